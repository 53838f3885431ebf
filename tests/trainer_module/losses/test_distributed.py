"""Global-batch mining is needed: mining per replica differs from one device.

That every loss gives one device's loss and gradients on 2 replicas is the testing kit's
check (tests/testing/test_losses.py, ``check_replicas``)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.trainer_module.losses.distributed_check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_naive_per_replica_mining_would_differ(results):
    # the problem the gathering solves is real on this batch
    assert results["triplet_semihard"]["naive_loss_diff"] > 1e-3
