"""Spans, the window and the schema gate, compiled and run through TFX's KFP v2 entrypoint.

The pipeline is compiled with ``--data-pattern 'span-{SPAN}/*.csv' --window 2`` and a curated
schema (written by ``metric-learning schema``, as a user would before compiling), then run by
``kfp_local.LocalBackend`` up to the DataValidator or Transform:

1. day 1 (span 1): ExampleGen's driver task resolves span 1; accepted;
2. day 2 (span 2, one feature x4): the window reads spans 1 and 2; the DataValidator task
   rejects the span against span 1's statistics, and Transform's compiled condition skips it;
3. day 2 again with the ``ingest`` and ``validation`` pipeline parameters changed (window 1,
   anomalies allowed): only span 2 is read, and the anomalies are allowed.
"""

import json
import os

import pytest
import yaml

from tests.kubeflow.kfp_local import LocalBackend
from tests.pipeline import span_data
from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.pipeline import cli

pytestmark = pytest.mark.e2e


def _one(backend, run_id, task, title):
    (found,) = [
        a
        for a in backend.store
        if a.run_id == run_id and a.task == task and a.schema_title == title
    ]
    return found


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp-spans")
    data_root, root, schema = base / "data", base / "root", base / "schema.pbtxt"
    span_data.write_span(str(data_root), 1)
    common = ["--data-pattern", span_data.PATTERN, "--schema", str(schema)]
    assert (
        cli.main(
            ["schema", "--data", str(data_root), "--pipeline-root", str(base / "local"), *common]
        )
        == 0
    )
    spec_path = base / "pipeline.yaml"
    assert (
        cli.main(
            [
                "compile",
                "--data-root",
                str(data_root),
                "--pipeline-root",
                str(root),
                "--window",
                "2",
                "--output",
                str(spec_path),
                *common,
            ]  # fmt: skip
        )
        == 0
    )
    spec = yaml.safe_load(open(spec_path))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    backend = LocalBackend(spec, str(root), env)
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    out = {"backend": backend, "root": root}
    out["day-1"] = backend.run("day-1", stop_after="DataValidator")
    span_data.write_span(str(data_root), 2, drift=True)
    out["day-2"] = backend.run("day-2", stop_after="Transform")
    out["rejected after day 2"] = ledger.rejected(str(root / "span_verdicts"))
    ingest = json.loads(defaults["ingest"]["defaultValue"]) | {"window": 1}
    validation = json.loads(defaults["validation"]["defaultValue"]) | {"allow_anomalies": True}
    out["day-2b"] = backend.run(
        "day-2b",
        {"ingest": json.dumps(ingest), "validation": json.dumps(validation)},
        stop_after="DataValidator",
    )
    return out


def examples_of(days, run_id):
    return _one(days["backend"], run_id, "FileBasedExampleGen", "tfx.Examples")


def anomalies_of(days, run_id):
    return _one(days["backend"], run_id, "DataValidator", "tfx.ExampleAnomalies")


def test_the_driver_task_resolves_the_newest_span_and_the_window_reaches_back(days):
    first, second = examples_of(days, "day-1"), examples_of(days, "day-2")
    assert (first.metadata["span"], first.metadata["spans"]) == (1, "1")
    assert (second.metadata["span"], second.metadata["spans"]) == (2, "1,2")
    with open(os.path.join(second.uri, "ingest_report.json")) as f:
        report = json.load(f)
    assert [s["span"] for s in report["spans"]] == [1, 2]
    assert anomalies_of(days, "day-1").metadata["blessed"] == 1


def test_a_drifted_span_is_rejected_and_transform_is_skipped(days):
    anomalies = anomalies_of(days, "day-2")
    assert anomalies.metadata["blessed"] == 0
    found = json.loads(anomalies.metadata["anomalies_found"])
    assert [f["feature"] for f in found] == list(span_data.DRIFTED)
    states = {r.task: r.state for r in days["day-2"]}
    assert states["Transform"] == "SKIPPED", states
    assert os.path.getsize(os.path.join(anomalies.uri, "Split-new_span", "SchemaDiff.pb")) > 0
    assert days["rejected after day 2"] == {2: None}


def test_runtime_parameters_change_the_window_and_allow_anomalies(days):
    examples = examples_of(days, "day-2b")
    assert examples.metadata["spans"] == "2"
    anomalies = anomalies_of(days, "day-2b")
    assert anomalies.metadata["blessed"] == 1
    assert json.loads(anomalies.metadata["anomalies_found"])  # allowed, not absent
    verdict = ledger.verdicts(str(days["root"] / "span_verdicts"))[2]
    assert verdict["accepted"] and verdict["allowed"]
