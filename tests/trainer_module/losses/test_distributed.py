"""Global-batch mining is needed: mining per replica differs from one device.

That every loss gives one device's loss and gradients on 2 replicas is the testing kit's
check (tests/testing/test_losses.py, ``check_replicas``); here the same two-replica run
without gathering (``"gather": false``) shows what the gathering prevents.
"""

import json

from tfx_metric_learning.testing.losses import run_replicas


def test_naive_per_replica_mining_would_differ():
    request = [
        {
            "name": "triplet_semihard",
            "params": {},
            "module": "tfx_metric_learning.trainer_module.losses",
            "gather": False,
        }
    ]
    proc = run_replicas(request)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["loss_diff"] > 1e-3  # the problem the gathering solves is real on this batch
