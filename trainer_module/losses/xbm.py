"""Cross-batch memory (XBM; Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020).

A ring buffer of the last ``size`` embeddings and labels. A ``MetricLoss`` with
``memory_size > 0`` mines each batch's queries against the batch plus the memory, so hard
negatives come from the last ``size / B`` batches, not only the current one. Memory entries
are constants (no gradient), as in the paper. Under ``MirroredStrategy`` every replica holds
the same gathered global batch, so the buffer is written from the first replica.
"""

from __future__ import annotations

import tensorflow as tf


class CrossBatchMemory(tf.Module):
    """Ring buffer of (label, embedding) pairs."""

    def __init__(self, size: int, dim: int):
        super().__init__(name="cross_batch_memory")
        if size < 1:
            raise ValueError(f"memory size must be >= 1, got {size}")
        opts = dict(
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.size = size
        self.embeddings = tf.Variable(tf.zeros([size, dim]), name="embeddings", **opts)
        self.labels = tf.Variable(tf.zeros([size], tf.int64), name="labels", **opts)
        self.filled = tf.Variable(tf.constant(0, tf.int64), name="filled", **opts)
        self.pointer = tf.Variable(tf.constant(0, tf.int64), name="pointer", **opts)

    def references(self, labels: tf.Tensor, embeddings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The batch followed by the filled part of the memory (batch rows first)."""
        n = tf.minimum(self.filled, self.size)
        mem_labels = tf.stop_gradient(self.labels[:n])
        mem_emb = tf.stop_gradient(self.embeddings[:n])
        return tf.concat([labels, mem_labels], 0), tf.concat([embeddings, mem_emb], 0)

    def enqueue(self, labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Operation:
        """Writes the batch over the oldest entries."""
        b = tf.cast(tf.shape(labels)[0], tf.int64)
        take = tf.minimum(b, self.size)  # a batch larger than the memory keeps its tail
        labels, embeddings = labels[b - take :], tf.stop_gradient(embeddings[b - take :])
        index = (self.pointer + tf.range(take, dtype=tf.int64)) % self.size
        new_emb = tf.tensor_scatter_nd_update(self.embeddings, index[:, None], embeddings)
        new_labels = tf.tensor_scatter_nd_update(self.labels, index[:, None], labels)
        return tf.group(
            self.embeddings.assign(new_emb),
            self.labels.assign(new_labels),
            self.pointer.assign((self.pointer + take) % self.size),
            self.filled.assign(tf.minimum(self.filled + take, self.size)),
        )
