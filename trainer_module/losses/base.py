"""Shared pieces of the loss library: the base classes and global-batch gathering."""

from __future__ import annotations

import tensorflow as tf


def gather_global_batch(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Concatenates each tensor over all replicas (axis 0) when running under a strategy.

    Under ``MirroredStrategy`` every replica sees ``1/N`` of the global batch; mining on that
    slice alone solves a smaller problem than one device would. ``all_gather`` hands every
    replica the whole global batch, and its gradient routes each replica's share back to the
    rows it owns, so the summed gradients equal those of one device on the same batch.
    Outside a strategy (or with one replica) the tensors come back unchanged.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return tuple(ctx.all_gather(t, axis=0) for t in tensors)


class MetricLoss(tf.keras.losses.Loss):
    """A loss over a labelled batch: ``call(labels [B], embeddings [B, D]) -> scalar``.

    Subclasses implement ``compute(labels, embeddings)`` on the global batch. Under a
    distribution strategy, Keras divides each replica's loss by the number of replicas, so
    every replica returns the global loss and the sum over replicas equals it.
    """

    def __init__(self, name: str, gather: bool = True):
        super().__init__(name=name, reduction=tf.keras.losses.Reduction.AUTO)
        self.gather = gather

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.reshape(y_true, [-1])
        embeddings = tf.convert_to_tensor(y_pred)
        if self.gather:
            labels, embeddings = gather_global_batch(labels, embeddings)
        return self.compute(labels, embeddings)

    def compute(self, labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
        """The loss of one (global) batch."""
        raise NotImplementedError


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (not NaN) when nothing is selected."""
    mask = tf.cast(mask, values.dtype)
    total = tf.reduce_sum(values * mask)
    count = tf.reduce_sum(mask)
    return tf.math.divide_no_nan(total, count)
