"""A Trainer task spread over two machines, on each backend's engine, with real artifacts.

The Trainer executor compiled for ``--trainer-workers 2`` (``kubeflow/distributed.py``) runs
in-process on the digits prepared by the real TFT and PairGen; it submits the training through
the real client library (the Kubernetes client for a TFJob; TFX's Vertex AI extension for a
custom job), to a stand-in engine on loopback (``fake_engines``) that starts the job's
replicas as local processes with ``TF_CONFIG``. Each replica runs TFX's Trainer executor
with our ``run_fn``: the model, the summary and nothing else come from the chief, and the
Trainer task sees the job succeed. A job that fails makes the task fail, naming the job.
"""

import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from tests.kubeflow import fake_engines
from tests.trainer_module.run_helpers import SPLITS, prepare_run_inputs
from tfx_metric_learning.kubeflow import distributed
from tfx_metric_learning.trainer_module import job
from tfx_metric_learning.trainer_module.settings import TrainingSettings

pytestmark = pytest.mark.e2e

IMAGE = "registry.example/tfx-metric-learning:test"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_run_inputs(tmp_path_factory.mktemp("distributed"))


def _trainer_call(prepared, out, plan, settings=None):
    """The Trainer's input, output and properties as the compiled task hands them."""
    examples, schema = prepared["modes"]["none"]
    inputs_examples = standard_artifacts.Examples()
    inputs_examples.uri = examples.uri
    inputs_examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    schema_artifact = standard_artifacts.Schema()
    schema_artifact.uri = schema.uri
    graph = standard_artifacts.TransformGraph()
    graph.uri = prepared["graph"]
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(out / "model"), str(out / "model_run")
    training = settings or TrainingSettings(
        loss="triplet_semihard", epochs=2, batch_size=64, checkpoint_dir=str(out / "state")
    )
    properties = {
        "run_fn": "tfx_metric_learning.trainer_module.run.run_fn",
        "custom_config": training.resolved().to_json(),
        "train_args": json.dumps({"num_steps": 1}),
        "eval_args": json.dumps({"splits": ["valid"], "num_steps": 1}),
        distributed.PLAN_KEY: plan.to_json(),
    }
    inputs = {
        "examples": [inputs_examples],
        "schema": [schema_artifact],
        "transform_graph": [graph],
    }
    return inputs, {"model": [model], "model_run": [model_run]}, properties


def _plan(backend, **extra):
    return distributed.Plan(
        backend=backend, workers=2, image=IMAGE, cpu=4.0, memory_gb=8.0, **extra
    )


def _check_trained_by_the_chief(out):
    assert os.path.exists(out / "model" / "Format-Serving" / "saved_model.pb")
    with open(out / "model_run" / "training_summary.json") as f:
        summary = json.load(f)
    assert summary["num_replicas"] == 2
    assert summary["strategy"] in ("MultiWorkerMirroredStrategy", "CollectiveAllReduceStrategy")
    model = tf.saved_model.load(str(out / "model" / "Format-Serving"))
    assert "serve_examples" in model.signatures
    # the non-chief's temporary copies are gone, and so is the resumable state
    leftovers = [d for d, _, _ in os.walk(out) if "workertemp" in d]
    assert leftovers == [] and not os.listdir(out / "state")


def test_a_tfjob_trains_on_two_replicas_and_only_the_chief_writes(prepared, tmp_path, monkeypatch):
    server = fake_engines.kubernetes(fake_engines.env_without_tf_config())
    monkeypatch.setenv("KUBECONFIG", fake_engines.kubeconfig(str(tmp_path / "kubeconfig"), server))
    monkeypatch.setenv("POD_NAMESPACE", "ml")
    monkeypatch.setattr(distributed, "POLL_SECONDS", 0.5)
    out = tmp_path / "out"
    plan = _plan("kfp", accelerator="nvidia.com/gpu", accelerators=1)
    distributed.Executor().Do(*_trainer_call(prepared, out, plan))
    (job,) = server.jobs.values()
    manifest = job["body"]
    assert manifest["kind"] == "TFJob" and manifest["metadata"]["namespace"] == "ml"
    specs = manifest["spec"]["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in specs.items()} == {"Chief": 1, "Worker": 1}
    (container,) = specs["Worker"]["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow" and container["image"] == IMAGE
    assert container["command"][:3] == ["python", "-m", "tfx.scripts.run_executor"]
    assert container["resources"]["limits"] == {"cpu": "4.0", "memory": "8.0G", "nvidia.com/gpu": 1}
    _check_trained_by_the_chief(out)
    # a retried task finds its job (same name) and waits for it instead of creating another
    distributed.Executor().Do(*_trainer_call(prepared, out, plan))
    assert len(server.jobs) == 1
    server.shutdown()


def test_a_failed_tfjob_fails_the_task_naming_it(prepared, tmp_path, monkeypatch):
    server = fake_engines.kubernetes(fake_engines.env_without_tf_config())
    monkeypatch.setenv("KUBECONFIG", fake_engines.kubeconfig(str(tmp_path / "kubeconfig"), server))
    monkeypatch.setattr(distributed, "POLL_SECONDS", 0.2)
    bad = TrainingSettings(loss="triplet_semihard", epochs=1, batch_size=10_000)  # > the split
    call = _trainer_call(prepared, tmp_path / "out", _plan("kfp"), settings=bad)
    with pytest.raises(RuntimeError, match=r"TFJob .*/trainer-[0-9a-f]+ failed"):
        distributed.Executor().Do(*call)
    server.shutdown()


def test_a_vertex_custom_job_trains_on_two_pools_and_only_the_chief_writes(
    prepared, tmp_path, monkeypatch
):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1 import JobServiceClient
    from tfx.extensions.google_cloud_ai_platform import runner, training_clients

    server = fake_engines.vertex(fake_engines.env_without_tf_config())

    def rest_client(self):  # Vertex's own client, over REST to the stand-in
        self._client = JobServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": server.url},
        )

    monkeypatch.setattr(training_clients.VertexJobClient, "create_client", rest_client)
    monkeypatch.setattr(runner, "_POLLING_INTERVAL_IN_SECONDS", 0.5)
    out = tmp_path / "out"
    plan = _plan("vertex", accelerator="NVIDIA_L4", accelerators=1, project="p", region="r1")
    distributed.Executor().Do(*_trainer_call(prepared, out, plan))
    (job,) = server.jobs.values()
    pools = job["body"]["jobSpec"]["workerPoolSpecs"]
    assert [int(p["replicaCount"]) for p in pools] == [1, 1]
    for pool in pools:
        assert pool["containerSpec"]["imageUri"] == IMAGE
        assert pool["machineSpec"]["acceleratorType"] in ("NVIDIA_L4", 11)  # enum name or number
        assert pool["containerSpec"]["command"][:3] == ["python", "-m", "tfx.scripts.run_executor"]
    _check_trained_by_the_chief(out)
    server.shutdown()


def test_the_extensions_keys_are_what_run_fn_leaves_out():
    assert all(k.startswith(job.EXTENSION_PREFIX) for k in distributed.extension_keys())
    config = {"loss": "contrastive", **{k: {} for k in distributed.extension_keys()}}
    assert job.training_config(config) == {"loss": "contrastive"}
