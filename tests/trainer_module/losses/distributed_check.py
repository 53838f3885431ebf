"""Run in a fresh process: 2 logical CPUs, loss and gradients, mirrored vs one device.

Prints JSON ``{loss_name: {"loss_diff": ..., "grad_diff": ..., "loss": ...}}``.
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfx_metric_learning.trainer_module import model as model_lib  # noqa: E402
from tfx_metric_learning.trainer_module.losses import registry  # noqa: E402

F, D, C, B = 6, 8, 4, 16


def gradients(name, strategy, x, y, gather=True):
    with strategy.scope():
        encoder = model_lib.build_encoder(F, [12], D, seed=3)
        loss = registry.build(name, {}, num_classes=C, embedding_dim=D)
        trainer = model_lib.EmbeddingTrainer(encoder, loss, C, seed=3)
        trainer(x[:2])
    if not gather:
        from tfx_metric_learning.trainer_module.losses import base

        base_gather = base.gather_global_batch
        base.gather_global_batch = lambda *t: t
    n = strategy.num_replicas_in_sync

    def step(xs, ys):
        with tf.GradientTape() as tape:
            value = trainer.loss_layer(ys, trainer(xs, training=True))
            scaled = value / n
        return scaled, tape.gradient(scaled, trainer.trainable_variables)

    @tf.function
    def run():
        half = B // n
        dx = strategy.experimental_distribute_values_from_function(
            lambda ctx: x[
                ctx.replica_id_in_sync_group * half : (ctx.replica_id_in_sync_group + 1) * half
            ]
        )
        dy = strategy.experimental_distribute_values_from_function(
            lambda ctx: y[
                ctx.replica_id_in_sync_group * half : (ctx.replica_id_in_sync_group + 1) * half
            ]
        )
        scaled, grads = strategy.run(step, args=(dx, dy))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, scaled, axis=None)
        return total, [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]

    try:
        value, grads = run()
    finally:
        if not gather:
            base.gather_global_batch = base_gather
    return float(value), [g.numpy() for g in grads]


def batch():
    """The fixed global batch every check uses."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(B, F)), tf.float32)
    y = tf.constant(np.repeat(np.arange(C), B // C)[rng.permutation(B)], tf.int64)
    return x, y


def main():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    x, y = batch()
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    names = ["triplet_semihard", *sys.argv[1:]]
    out = {}
    for name in names:
        l1, g1 = gradients(name, one, x, y)
        l2, g2 = gradients(name, two, x, y)
        entry = {
            "loss": l1,
            "loss_diff": abs(l1 - l2),
            "grad_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(g1, g2, strict=True)),
            "grad_norm": max(float(np.max(np.abs(a))) for a in g1),
            "replicas": two.num_replicas_in_sync,
        }
        if name == "triplet_semihard":
            naive, _ = gradients(name, two, x, y, gather=False)
            entry["naive_loss_diff"] = abs(l1 - naive)
        out[name] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
