"""Global-batch mining is needed: mining per replica differs from one device.

That every loss gives one device's loss and gradients on 2 replicas is the testing kit's
check (tests/testing/test_losses.py, ``check_replicas``); here the same two-replica run
without gathering (``"gather": false``) shows what the gathering prevents.
"""

import json
import os
import subprocess
import sys


def test_naive_per_replica_mining_would_differ():
    request = [
        {
            "name": "triplet_semihard",
            "params": {},
            "module": "tfx_metric_learning.trainer_module.losses",
            "gather": False,
        }
    ]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "tfx_metric_learning.testing.replicas", json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["loss_diff"] > 1e-3  # the problem the gathering solves is real on this batch
