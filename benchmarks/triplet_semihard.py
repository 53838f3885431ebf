"""Benchmark: our triplet_semihard vs the TensorFlow Addons algorithm, forward + backward.

TensorFlow Addons' ``TripletSemiHardLoss`` (no longer importable beside Keras 3) tiled the
B x B distance matrix B times (a B^2 x B tensor) to find each pair's semi-hard negative. The
reference below reproduces that algorithm; ours sorts each row once and binary-searches
(O(B^2) memory). Both run as ``tf.function`` on the same data, interleaved, in one process;
peak memory is measured for each alone in a fresh subprocess.

    .venv/bin/python benchmarks/triplet_semihard.py [--batch 512] [--dim 128] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

from tfx_metric_learning.trainer_module.losses.triplet import TripletSemiHardLoss  # noqa: E402


def _pairwise_distance(feature: tf.Tensor) -> tf.Tensor:
    """TensorFlow Addons' ``pairwise_distance(squared=False)``."""
    sq = tf.math.add(
        tf.math.reduce_sum(tf.math.square(feature), axis=[1], keepdims=True),
        tf.math.reduce_sum(tf.math.square(tf.transpose(feature)), axis=[0], keepdims=True),
    ) - 2.0 * tf.matmul(feature, tf.transpose(feature))
    sq = tf.math.maximum(sq, 0.0)
    error_mask = tf.math.less_equal(sq, 0.0)
    dist = tf.math.sqrt(sq + tf.cast(error_mask, tf.float32) * 1e-16)
    dist = tf.math.multiply(dist, tf.cast(tf.math.logical_not(error_mask), tf.float32))
    n = tf.shape(feature)[0]
    return tf.math.multiply(dist, tf.ones([n, n]) - tf.linalg.diag(tf.ones([n])))


def _masked_maximum(data, mask, dim=1):
    axis_minimums = tf.math.reduce_min(data, dim, keepdims=True)
    return (
        tf.math.reduce_max(tf.math.multiply(data - axis_minimums, mask), dim, keepdims=True)
        + axis_minimums
    )


def _masked_minimum(data, mask, dim=1):
    axis_maximums = tf.math.reduce_max(data, dim, keepdims=True)
    return (
        tf.math.reduce_min(tf.math.multiply(data - axis_maximums, mask), dim, keepdims=True)
        + axis_maximums
    )


def tfa_semihard(labels: tf.Tensor, embeddings: tf.Tensor, margin: float = 1.0) -> tf.Tensor:
    """The TensorFlow Addons algorithm (tiles the distance matrix: O(B^3) memory)."""
    labels = tf.reshape(labels, [-1, 1])
    batch_size = tf.size(labels)
    pdist = _pairwise_distance(embeddings)
    adjacency = tf.math.equal(labels, tf.transpose(labels))
    adjacency_not = tf.math.logical_not(adjacency)
    pdist_tile = tf.tile(pdist, [batch_size, 1])
    mask = tf.math.logical_and(
        tf.tile(adjacency_not, [batch_size, 1]),
        tf.math.greater(pdist_tile, tf.reshape(tf.transpose(pdist), [-1, 1])),
    )
    mask_final = tf.reshape(
        tf.math.greater(tf.math.reduce_sum(tf.cast(mask, tf.float32), 1, keepdims=True), 0.0),
        [batch_size, batch_size],
    )
    mask_final = tf.transpose(mask_final)
    adjacency_not = tf.cast(adjacency_not, tf.float32)
    mask = tf.cast(mask, tf.float32)
    negatives_outside = tf.transpose(
        tf.reshape(_masked_minimum(pdist_tile, mask), [batch_size, batch_size])
    )
    negatives_inside = tf.tile(_masked_maximum(pdist, adjacency_not), [1, batch_size])
    semi_hard = tf.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = tf.math.add(margin, pdist - semi_hard)
    mask_positives = tf.cast(adjacency, tf.float32) - tf.linalg.diag(tf.ones([batch_size]))
    num_positives = tf.math.reduce_sum(mask_positives)
    return tf.math.divide_no_nan(
        tf.math.reduce_sum(tf.math.maximum(tf.math.multiply(loss_mat, mask_positives), 0.0)),
        num_positives,
    )


def make_step(impl: str):
    """A traced forward+backward step of one implementation."""
    ours = TripletSemiHardLoss(margin=1.0, distance="l2", fallback="easiest")

    @tf.function(jit_compile=False)
    def step(labels, emb):
        with tf.GradientTape() as tape:
            tape.watch(emb)
            value = ours(labels, emb) if impl == "ours" else tfa_semihard(labels, emb)
        return value, tape.gradient(value, emb)

    return step


def data(batch: int, dim: int, classes: int, seed: int = 0):
    """Random unit embeddings and class labels."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(batch, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.integers(0, classes, size=batch)
    return tf.constant(labels), tf.constant(emb)


def peak_memory_mb(impl: str, args) -> tuple[float, float]:
    """(peak RSS, RSS before the loss ran) of a fresh process that runs ``impl``."""
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--only",
            impl,
            "--batch",
            str(args.batch),
            "--dim",
            str(args.dim),
            "--classes",
            str(args.classes),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["peak_rss_mb"], result["before_mb"]


def main() -> None:
    """Times both implementations side by side and prints the ratio and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", choices=["ours", "tfa"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    labels, emb = data(args.batch, args.dim, args.classes)

    if args.only:
        base = peak_rss_mb()
        step = make_step(args.only)
        for _ in range(3):
            step(labels, emb)
        print(json.dumps({"peak_rss_mb": peak_rss_mb(), "before_mb": base}))
        return

    steps = {impl: make_step(impl) for impl in ("ours", "tfa")}
    values = {impl: steps[impl](labels, emb) for impl in steps}  # trace + warm up
    for impl in steps:
        steps[impl](labels, emb)
    times = {impl: [] for impl in steps}
    for _ in range(args.repeats):
        for impl in steps:  # interleaved, so both see the same machine noise
            start = time.perf_counter()
            value, grad = steps[impl](labels, emb)
            _ = grad.numpy()
            times[impl].append(time.perf_counter() - start)
    med = {impl: statistics.median(t) for impl, t in times.items()}
    loss_diff = abs(float(values["ours"][0]) - float(values["tfa"][0]))
    grad_diff = float(tf.reduce_max(tf.abs(values["ours"][1] - values["tfa"][1])))
    memory = {impl: peak_memory_mb(impl, args) for impl in steps}
    print(
        f"triplet_semihard forward+backward, batch {args.batch}, dim {args.dim}, "
        f"{args.classes} classes, median of {args.repeats}"
    )
    for impl, label in (("ours", "ours          "), ("tfa", "TFA algorithm ")):
        peak, before = memory[impl]
        print(
            f"  {label}  {med[impl] * 1e3:8.2f} ms   peak RSS {peak:6.0f} MB "
            f"(+{peak - before:.0f} MB over the process before the loss)"
        )
    print(f"  ratio ours/TFA  {med['ours'] / med['tfa']:.3f}  (target <= 0.5)")
    print(f"  same result: |loss diff| {loss_diff:.2e}, max |grad diff| {grad_diff:.2e}")


if __name__ == "__main__":
    main()
