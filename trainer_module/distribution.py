"""Where the Trainer runs: the distribution strategy, its devices, and which process is chief.

One process per machine: ``MultiWorkerMirroredStrategy`` across the workers ``TF_CONFIG`` names
(Kubeflow's training operator, a Vertex AI custom job), else ``MirroredStrategy`` over the
local GPUs or logical CPU devices, else TensorFlow's default strategy on one device.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def workers_in(tf_config: str | None) -> int:
    """Number of workers (chief included) that a ``TF_CONFIG`` JSON names."""
    if not tf_config:
        return 1
    cluster = json.loads(tf_config).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy() -> tf.distribute.Strategy:
    """The distribution strategy for this process.

    MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers (Kubeflow training
    operator, Vertex custom job); otherwise MirroredStrategy over every GPU, else every
    logical CPU device, when there are several; with one device, TensorFlow's default
    strategy (no replica machinery: MirroredStrategy over one device cost about 20% of the
    training step, ``benchmarks/trainer_throughput.py``). The losses' global-batch gathering
    works the same in all of them (one replica gathers nothing).
    """
    if workers_in(os.environ.get("TF_CONFIG")) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = local_devices()
    if len(devices) == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the training's outputs (export, summary, state clean-up).

    With several workers (``MultiWorkerMirroredStrategy``) only the chief does: the task of
    type ``chief``, else worker 0 (TensorFlow's ``should_checkpoint``); every other strategy
    runs in one process, which is the chief.
    """
    return bool(strategy.extended.should_checkpoint)


def local_devices() -> list[str]:
    """The devices this process trains on: every logical GPU, else every logical CPU device."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]


def describe_strategy(strategy: tf.distribute.Strategy) -> tuple[str, list[str]]:
    """``(name, devices)`` of ``strategy`` for the summary; the default strategy is ``"none"``."""
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "none", local_devices()[:1]
    return type(strategy).__name__, list(strategy.extended.worker_devices)
