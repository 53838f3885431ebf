"""Run in a fresh process by ``check_loss``: a loss on two mirrored CPU replicas vs one device.

``python -m tfx_metric_learning.testing.replicas '[{"name": ..., "params": {...}, "module": ...}]'``
imports each ``module`` (which registers its loss), splits the CPU into two logical devices (only
possible before TensorFlow initialises, hence the process), and computes the loss of one
global batch and its gradients with respect to a linear map ``W`` (the stand-in encoder:
``y_pred = normalise(x W)``, logits ``x W`` for classification) and the loss's own weights,
once with ``OneDeviceStrategy`` and once with ``MirroredStrategy`` over the two devices, each
replica taking half the batch and its loss scaled by ``1/replicas`` (what Keras' ``fit``
does). Prints a JSON list, per request: ``name``, ``loss``, ``loss_diff``, ``grad_diff``,
``grad_norm``, ``replicas``. One process serves many losses (TensorFlow starts once).

A request with ``"gather": false`` runs the two replicas without gathering the global batch
(``base.gather_global_batch`` made the identity): each replica mines its own half, which is
what global-batch mining exists to prevent; the project's tests use it to show the check bites.
``global_batch`` and ``loss_and_gradients`` also serve the multi-worker test (one worker per
process, ``tests/kubeflow/multiworker_check.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

F, D, C, B = 5, 6, 8, 16


def global_batch(spec, params):
    """The fixed global batch ``(x, y)`` of the loss's input mode.

    Seeded: every process and worker builds the same one.
    """
    rng = np.random.default_rng(0)
    tuple_size = {"pairs": 2, "triplets": 3, "triplets_k": 2 + int(params.get("num_negatives", 0))}
    shape = (B, tuple_size[spec.input_mode], F) if spec.input_mode in tuple_size else (B, F)
    x = rng.normal(size=shape).astype(np.float32)
    if spec.input_mode == "pairs":
        y = (np.arange(B) % 2).astype(np.int64)
    else:
        y = np.repeat(np.arange(4), B // 4)[rng.permutation(B)].astype(np.int64)
    return tf.constant(x), tf.constant(y)


def loss_and_gradients(name, params, strategy, x, y, gather=True):
    """``(loss, gradients)`` of one global batch under ``strategy``.

    The loss is summed over replicas (each scaled by ``1/replicas``); the gradients are those
    of ``W`` and of the loss's own weights.
    """
    from tfx_metric_learning.trainer_module.losses import base, registry

    spec = registry.get_spec(name)

    width = C if spec.input_mode == "classification" else D
    with strategy.scope():
        w = tf.Variable(np.random.default_rng(1).normal(size=(F, width)).astype(np.float32))
        loss = registry.build(name, params, num_classes=C, embedding_dim=D)
        variables = [w]

        def encode(xs):
            out = tf.einsum("...f,fd->...d", xs, w)
            return out if spec.input_mode == "classification" else tf.math.l2_normalize(out, -1)

        loss(y, encode(x))  # builds the loss's own weights (proxies, centres) in the scope

    n = strategy.num_replicas_in_sync

    def step(xs, ys):
        with tf.GradientTape() as tape:
            scaled = loss(ys, encode(xs)) / n
        return scaled, tape.gradient(scaled, variables + list(loss.trainable_variables))

    def shard(t):
        half = B // n
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: t[
                ctx.replica_id_in_sync_group * half : (ctx.replica_id_in_sync_group + 1) * half
            ]
        )

    @tf.function
    def run():
        scaled, grads = strategy.run(step, args=(shard(x), shard(y)))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, scaled, axis=None)
        return total, [
            strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None)
            for g in grads
            if g is not None
        ]

    gather_global_batch = base.gather_global_batch
    if not gather:
        base.gather_global_batch = lambda *tensors: tensors
    try:
        value, grads = run()
    finally:
        base.gather_global_batch = gather_global_batch
    return float(value), [tf.convert_to_tensor(g).numpy() for g in grads]


def main(requests: str) -> list[dict]:
    """The comparison for each request of the JSON list ``requests``."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return [_compare(req) for req in json.loads(requests)]


def _compare(req: dict) -> dict:
    importlib.import_module(req["module"])
    from tfx_metric_learning.trainer_module.losses import registry

    spec = registry.get_spec(req["name"])
    params = registry.validate(req["name"], req["params"])
    x, y = global_batch(spec, params)
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    l1, g1 = loss_and_gradients(req["name"], req["params"], one, x, y)
    l2, g2 = loss_and_gradients(req["name"], req["params"], two, x, y, req.get("gather", True))
    return {
        "name": req["name"],
        "loss": l1,
        "loss_diff": abs(l1 - l2),
        "grad_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(g1, g2, strict=True)),
        "grad_norm": max(float(np.max(np.abs(a))) for a in g1),
        "replicas": two.num_replicas_in_sync,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
