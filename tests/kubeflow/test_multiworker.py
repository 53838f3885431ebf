"""Multi-worker training: TF_CONFIG with two workers (on loopback) selects
MultiWorkerMirroredStrategy, and the global-batch mining losses and their gradients equal
one device's on the same batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.kubeflow.multiworker_check import LOSSES
from tests.ports import free_ports


def _env(extra=None):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def results():
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    cmd = [sys.executable, "-m", "tests.kubeflow.multiworker_check"]
    workers = [
        subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(
                {
                    "TF_CONFIG": json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": i}}
                    )
                }
            ),
        )
        for i in range(2)
    ]
    outs = []
    for w in workers:
        stdout, stderr = w.communicate(timeout=300)
        assert w.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    single = subprocess.run(
        cmd + ["single"], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert single.returncode == 0, single.stderr[-3000:]
    return outs, json.loads(single.stdout.strip().splitlines()[-1])


def test_tf_config_with_two_workers_selects_multi_worker_strategy(results):
    workers, single = results
    for w in workers:
        # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy in TF 2.16
        assert w["strategy"] in ("MultiWorkerMirroredStrategy", "CollectiveAllReduceStrategy")
        assert w["replicas"] == 2
    assert single["strategy"] == "none"  # one device, no TF_CONFIG: no distribution strategy


@pytest.mark.parametrize("name", LOSSES)
def test_two_workers_match_one_device(results, name):
    workers, single = results
    for w in workers:
        assert w[name]["loss"] == pytest.approx(single[name]["loss"], abs=1e-5)
        for a, b in zip(w[name]["grads"], single[name]["grads"], strict=True):
            np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-5)
