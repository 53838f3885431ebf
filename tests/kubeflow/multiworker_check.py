"""One worker of a 2-worker MultiWorkerMirroredStrategy cluster on loopback (TF_CONFIG set).

Prints JSON: the strategy ``make_strategy`` chose, the replica count, and for each mining
loss the global loss and gradients (as lists) on the shared global batch.
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx_metric_learning.testing.replicas import global_batch, loss_and_gradients  # noqa: E402
from tfx_metric_learning.trainer_module import distribution  # noqa: E402
from tfx_metric_learning.trainer_module.losses import registry  # noqa: E402

LOSSES = ("triplet_semihard", "multi_similarity", "supcon")


def main():
    strategy = distribution.make_strategy()
    out = {
        "strategy": distribution.describe_strategy(strategy)[0],
        "replicas": strategy.num_replicas_in_sync,
    }
    one = None
    if len(sys.argv) > 1 and sys.argv[1] == "single":
        import tensorflow as tf

        one = tf.distribute.OneDeviceStrategy("/cpu:0")
    for name in LOSSES:
        x, y = global_batch(registry.get_spec(name), {})
        value, grads = loss_and_gradients(name, {}, one or strategy, x, y)
        out[name] = {"loss": value, "grads": [g.tolist() for g in grads]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
