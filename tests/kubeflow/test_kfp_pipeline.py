"""The compiled pipeline executed task by task through TFX's KFP v2 container entrypoint.

``kfp_local.LocalBackend`` plays the KFP v2 / Vertex AI backend on local folders standing in
for the bucket: each container task runs as its compiled command with the ExecutorInput the
spec defines, the resolver tasks apply their compiled artifact filters to the artifacts of
earlier tasks and runs, and the compiled trigger conditions (Transform and everything after
it run only on data the DataValidator accepted) are evaluated (CEL) on the artifacts the
tasks wrote. Three runs share one artifact store:

1. the compiled defaults: trains, is blessed, is pushed;
2. a worse ``training`` runtime parameter (one training step): the resolver finds run 1's model
   by the name the blessing carries, the evaluator compares with it, Pusher reads the blessing
   and pushes nothing, and the serving folder is byte-for-byte unchanged;
3. a ``training`` runtime parameter with a loss of another family (contrastive, which
   consumes pairs): PairGen follows it and builds pairs, and the Trainer trains on them.
"""

import hashlib
import json
import os

import pytest
import yaml

from tests.kubeflow.kfp_local import LocalBackend, StoredArtifact
from tfx_metric_learning.pipeline import cli, data

pytestmark = pytest.mark.e2e


def _tree_digest(folder):
    digest = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def kfp(tmp_path_factory):
    base = tmp_path_factory.mktemp("kfp")
    data_root, root, serving = base / "data", base / "root", base / "serving"
    data.write_if_changed(str(data_root / "digits.csv"), data.digits_csv_text(limit=600))
    spec_path = base / "pipeline.yaml"
    code = cli.main(
        [
            "compile",
            "--data-root",
            str(data_root),
            "--pipeline-root",
            str(root),
            "--serving-dir",
            str(serving),
            "--epochs",
            "8",
            "--batch-size",
            "64",
            "--output",
            str(spec_path),
        ]
    )
    assert code == 0
    spec = yaml.safe_load(open(spec_path))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    backend = LocalBackend(spec, str(root), env)
    training = json.loads(
        spec["root"]["inputDefinitions"]["parameters"]["training"]["defaultValue"]
    )
    out = {"backend": backend, "serving": str(serving)}
    out["run1"] = backend.run("run-1")
    out["serving_after_run1"] = _tree_digest(serving)
    worse = training | {"train_steps": 1}
    out["run2"] = backend.run("run-2", {"training": json.dumps(worse)})
    out["serving_after_run2"] = _tree_digest(serving)
    other_family = training | {"loss": "contrastive", "loss_params": {}}
    out["run3"] = backend.run("run-3", {"training": json.dumps(other_family)}, stop_after="Trainer")
    return out


def _states(records):
    return {r.task: r.state for r in records}


def _artifact(backend, run_id, task, title) -> StoredArtifact:
    (found,) = [
        a
        for a in backend.store
        if a.run_id == run_id and a.task == task and a.schema_title == title
    ]
    return found


def _json(artifact, name):
    with open(os.path.join(artifact.uri, name)) as f:
        return json.load(f)


def test_run1_trains_blesses_and_pushes(kfp):
    states = _states(kfp["run1"])
    assert states["Pusher"] == "COMPLETE", states
    assert all(s in ("COMPLETE", "RESOLVED") for s in states.values()), states
    backend = kfp["backend"]
    blessing = _artifact(backend, "run-1", "RetrievalEvaluator", "tfx.ModelBlessing")
    model = _artifact(backend, "run-1", "Trainer", "tfx.Model")
    assert blessing.metadata["blessed"] == 1.0
    # the entrypoint turned the integer id into the model's artifact name
    assert blessing.metadata["current_model_id"] == model.name
    pushed = _artifact(backend, "run-1", "Pusher", "tfx.PushedModel")
    assert pushed.metadata["pushed"] == 1.0
    assert os.path.exists(os.path.join(pushed.metadata["pushed_destination"], "saved_model.pb"))
    assert kfp["serving_after_run1"], "nothing was pushed"


def test_run2_finds_run1_as_baseline_and_is_not_pushed(kfp):
    backend = kfp["backend"]
    by_task = {r.task: r for r in kfp["run2"]}
    run1_model = _artifact(backend, "run-1", "Trainer", "tfx.Model")
    assert (
        run1_model.name.rsplit("/", 1)[-1]
        in by_task["latest_blessed_model_resolver-model-resolver"].detail
    )
    evaluation = _artifact(backend, "run-2", "RetrievalEvaluator", "tfx.ModelEvaluation")
    record = _json(evaluation, "evaluation.json")
    assert record["baseline_model"]["uri"] == run1_model.uri
    assert record["blessed"] is False
    assert any("worse than the baseline" in r for r in record["reasons"]), record["reasons"]
    training = _json(
        _artifact(backend, "run-2", "Trainer", "tfx.ModelRun"), "training_summary.json"
    )
    assert training["total_steps"] == 1
    blessing = _artifact(backend, "run-2", "RetrievalEvaluator", "tfx.ModelBlessing")
    assert blessing.metadata["blessed"] == 0.0
    assert blessing.metadata["baseline_model_id"] == run1_model.name
    # Pusher runs (the data was accepted), reads the blessing and pushes nothing
    assert by_task["Pusher"].state == "COMPLETE"
    assert _artifact(backend, "run-2", "Pusher", "tfx.PushedModel").metadata["pushed"] == 0.0
    assert kfp["serving_after_run2"] == kfp["serving_after_run1"]


def test_run3_pair_gen_follows_a_runtime_change_of_loss_family(kfp):
    backend = kfp["backend"]
    assert _states(kfp["run3"])["Trainer"] == "COMPLETE"
    stats = _json(_artifact(backend, "run-3", "PairGen", "tfx.Examples"), "pair_gen_stats.json")
    assert stats["mode"] == "pairs" and stats["splits"]["train"]["examples"] > 0
    training = _json(
        _artifact(backend, "run-3", "Trainer", "tfx.ModelRun"), "training_summary.json"
    )
    assert training["loss"] == "contrastive" and training["pair_gen_mode"] == "pairs"
