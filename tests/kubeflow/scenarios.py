"""The heavy stand-in scenarios, compiled once and run side by side (``conftest.stand_in_runs``).

Each task of a stand-in run is a process of its own; one that starts as a new interpreter
spends most of its time importing TFX on one core. So tasks are forked from a server that has
imported TFX once (``pods.FORKED``), except on the open-source backend's first scheduled day,
whose every task starts as a new interpreter as in a pod (``pods.FRESH``). The scenarios run at
once, each on its own folders, store and cache: the four scheduled days on each backend
(``test_kfp_scheduled.py``) and a comparison (``test_kfp_compare.py``). Everything a scenario
compiles is compiled first, in the calling thread (TFX's compiler keeps its runtime parameters
in a module-level context); only the backends' runs go to threads.
"""

from __future__ import annotations

import hashlib
import json
import os

import yaml

from tests.kubeflow import pods
from tests.kubeflow.kfp_local import LocalBackend
from tests.pipeline import span_data
from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.pipeline import cli, data

AGAIN = "4-again"  # day 4's run submitted again: the same data, record and parameters
FRESH_RUN_MODE = "kfp"  # the backend whose day 1 starts every task as a new interpreter


def _env() -> dict:
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")


def tree_digest(folder) -> dict:
    """``{relative path: sha256}`` of every file under ``folder``."""
    digest = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digest


def curated_schema(base) -> str:
    """The curated schema a user writes before compiling (``metric-learning schema``)."""
    schema, first = base / "schema.pbtxt", base / "first-span"
    span_data.write_span(str(first), 1)
    args = ["schema", "--data", str(first), "--pipeline-root", str(base / "local")]
    assert cli.main([*args, "--data-pattern", span_data.PATTERN, "--schema", str(schema)]) == 0
    return str(schema)


def compile_schedule(home, schema: str) -> dict:
    """The daily pipeline as a user compiles it for a schedule (local folders stand for buckets
    every pod mounts: ``--allow-local-paths``)."""
    data, root, spec_path = home / "data", home / "root", home / "pipeline.yaml"
    args = [
        "compile",
        "--data-root", str(data),
        "--pipeline-root", str(root),
        "--allow-local-paths",
        "--data-pattern", span_data.PATTERN,
        "--schema", schema,
        "--window", "2",
        "--warm-start",
        "--epochs", "5",
        "--batch-size", "64",
        "--output", str(spec_path),
    ]  # fmt: skip
    assert cli.main(args) == 0
    return {
        "spec": yaml.safe_load(open(spec_path)),
        "data": data,
        "serving": root / "serving_model",
    }


def four_days(compiled: dict, mode: str, home) -> dict:
    """Four scheduled runs, a new span before each (day 3 drifted; day 4 a worse model), then
    day 4's run once more as it was (``AGAIN``: a retried run, nothing new)."""
    spec, data, serving = compiled["spec"], compiled["data"], compiled["serving"]
    backend = LocalBackend(spec, _env(), mode=mode, pods_dir=str(home / "pods"))
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    worse = json.loads(defaults["training"]["defaultValue"]) | {
        "loss": "contrastive",
        "loss_params": {},
        "train_steps": 1,
        "warm_start": False,
    }
    out = {"mode": mode, "backend": backend, "serving": serving, "records": {}, "after": {}}
    for day in (1, 2, 3, 4, AGAIN):
        # every task of the open-source backend's first day in a new interpreter, as in a pod;
        # else forked from the server that has imported TFX once (pods.py)
        backend.processes = pods.FRESH if (mode, day) == (FRESH_RUN_MODE, 1) else pods.FORKED
        if day != AGAIN:
            span_data.write_span(str(data), day, drift=day == 3)
        parameters = {"training": json.dumps(worse)} if day in (4, AGAIN) else None
        out["records"][day] = {r.task: r for r in backend.run(f"day-{day}", parameters)}
        out["after"][day] = {
            "serving": tree_digest(serving),
            "production": production_record.read(str(serving)),
        }
    return out


def compile_comparison(base) -> dict:
    """Two candidates, tuned, at most one branch at a time (run in either stand-in mode)."""
    data_root, root, serving = base / "data", base / "root", base / "serving"
    data.write_if_changed(str(data_root / "digits.csv"), data.digits_csv_text(limit=600))
    spec_path = base / "pipeline.yaml"
    args = ["compile", "--compare", "--losses", "triplet_semihard,supcon", "--seeds", "1"]
    args += ["--tuning-trials", "2"]
    args += ["--data-root", str(data_root), "--pipeline-root", str(root)]
    args += ["--serving-dir", str(serving), "--epochs", "2", "--batch-size", "64"]
    args += ["--allow-local-paths", "--max-parallel-branches", "1"]
    assert cli.main([*args, "--output", str(spec_path)]) == 0
    return {"spec": yaml.safe_load(open(spec_path)), "home": base}


def comparison(compiled: dict, mode: str) -> dict:
    """The compiled comparison run by the stand-in in ``mode`` (a backend of ``MODES``)."""
    backend = LocalBackend(
        compiled["spec"], _env(), mode=mode, pods_dir=str(compiled["home"] / "pods")
    )
    records = backend.run("run-1")
    return {"backend": backend, "spec": compiled["spec"], "records": records, "mode": mode}
