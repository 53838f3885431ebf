"""run_fn across two worker processes (TF_CONFIG, loopback): only the chief writes.

Each worker runs the real ``run_fn`` on digits prepared by the real TFT and PairGen, its
outputs on a filesystem private to its process (``multiworker_run_check``), as two pods of a
TFJob or a Vertex AI custom job would with the same output paths. The chief (worker 0, no
``chief`` task in the cluster) exports the model, writes the summary and removes the
resumable state; the other worker trains in lockstep (MultiWorkerMirroredStrategy) and
leaves nothing.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.ports import free_ports
from tests.trainer_module.run_helpers import prepare_run_inputs
from tfx_metric_learning.trainer_module.settings import TrainingSettings


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    prepared = prepare_run_inputs(tmp_path_factory.mktemp("multiworker"))
    examples, schema = prepared["modes"]["none"]
    settings = TrainingSettings(loss="triplet_semihard", epochs=2, batch_size=64).resolved()
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    command = [sys.executable, "-m", "tests.trainer_module.multiworker_run_check"]
    command += [examples.uri, schema.uri, prepared["graph"], settings.to_json()]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-4000:]
        out.append({"files": json.loads(stdout.strip().splitlines()[-1]), "log": stderr})
    return out


def test_the_chief_exports_the_model_and_the_summary(workers):
    files = workers[0]["files"]
    assert "serving/saved_model.pb" in files
    assert "run/training_summary.json" in files
    assert not any(f.startswith("state/") for f in files)  # resumable state removed
    assert not any("workertemp" in f for f in files)


def test_the_other_worker_leaves_nothing(workers):
    assert workers[1]["files"] == []
    assert "not the chief" in workers[1]["log"]


def test_both_trained_as_one_cluster(workers):
    for worker in workers:
        # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy in TF 2.16
        assert "2 replicas (CollectiveAllReduceStrategy" in worker["log"], worker["log"][-2000:]
        assert "sharded by element" in worker["log"]  # one train file, two workers
