"""Shared pieces of the loss library: base classes, global-batch gathering, safe reductions.

Every loss is a ``tf.keras.layers.Layer`` called as ``loss(labels, y_pred) -> scalar``, so a
loss may own trainable weights (ArcFace class centres, proxies, a learned scale) that train
with the model. What ``labels`` and ``y_pred`` hold depends on the loss's input mode:

- ``labelled``: class ids ``[B]`` and embeddings ``[B, D]`` (online mining over the batch);
- ``pairs``: similar/dissimilar targets ``[B]`` and ``[B, 2, D]`` (left, right);
- ``triplets``: ignored labels and ``[B, 3, D]`` (anchor, positive, negative);
- ``triplets_k``: ignored labels and ``[B, 2 + K, D]`` (anchor, positive, K negatives);
- ``classification``: class ids ``[B]`` and logits ``[B, C]``.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.trainer_module.distances import Distance, get_distance
from tfx_metric_learning.trainer_module.losses.xbm import CrossBatchMemory


def gather_global_batch(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Concatenates each tensor over all replicas (axis 0) when running under a strategy.

    Under ``MirroredStrategy`` every replica sees ``1/N`` of the global batch; mining on that
    slice alone solves a smaller problem than one device would (tensorflow/tensorflow#47344).
    ``all_gather`` hands every replica the whole global batch, and its gradient sums the
    upstream gradients over replicas and routes each replica's rows back to it, so with every
    replica computing the global loss scaled by ``1/N`` the summed weight gradients equal
    those of one device on the same batch. Outside a strategy the tensors come back unchanged.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return tuple(ctx.all_gather(t, axis=0) for t in tensors)


def warn_if_empty(count: tf.Tensor, name: str) -> None:
    """Logs a warning (from inside the graph) when a batch has nothing for the loss."""

    def warn():
        tf.print(f"WARNING: loss {name}: the batch has no valid pair or triplet; loss is 0")
        return tf.constant(0)

    tf.cond(tf.equal(count, 0), warn, lambda: tf.constant(0))


def masked_mean(values: tf.Tensor, mask: tf.Tensor, name: str | None = None) -> tf.Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (not NaN) when nothing is selected."""
    mask = tf.cast(mask, values.dtype)
    count = tf.reduce_sum(mask)
    if name:
        warn_if_empty(count, name)
    safe = tf.where(mask > 0, values, tf.zeros_like(values))
    return tf.math.divide_no_nan(tf.reduce_sum(safe * mask), count)


def masked_logsumexp(x: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """``log sum_{mask} exp(x)`` along ``axis``; ``-inf`` where nothing is selected.

    Stable (max-shifted) and with a finite gradient even where the mask is empty.
    """
    mask = tf.cast(mask, tf.bool)
    very_negative = tf.fill(tf.shape(x), tf.constant(-1e30, x.dtype))
    masked = tf.where(mask, x, very_negative)
    peak = tf.stop_gradient(tf.reduce_max(masked, axis=axis, keepdims=True))
    peak = tf.where(peak > -1e29, peak, tf.zeros_like(peak))
    total = tf.reduce_sum(
        tf.where(mask, tf.exp(masked - peak), tf.zeros_like(x)), axis=axis, keepdims=True
    )
    out = tf.where(
        total > 0,
        tf.math.log(tf.where(total > 0, total, tf.ones_like(total))) + peak,
        tf.fill(tf.shape(total), tf.constant(-float("inf"), x.dtype)),
    )
    return tf.squeeze(out, axis=axis)


def resolve_distance(distance: str | Distance) -> Distance:
    """A ``Distance`` from its name or itself."""
    return get_distance(distance) if isinstance(distance, str) else distance


class Loss(tf.keras.layers.Layer):
    """Base of every loss: ``loss(labels, y_pred) -> scalar`` (see the module doc).

    ``input_mode`` says what ``labels`` and ``y_pred`` hold; ``registered_name`` is set by
    ``declare.register`` and names the layer.
    """

    input_mode = "labelled"
    registered_name = ""

    def __init__(self, **kwargs):
        kwargs.setdefault("name", self.registered_name or type(self).__name__)
        super().__init__(**kwargs)

    def call(self, labels: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class MetricLoss(Loss):
    """A loss mined over a labelled batch: ``compute(q_labels, q_emb, r_labels, r_emb)``.

    The batch is first gathered over replicas (global-batch mining). Queries are the batch;
    references are the batch too, or the batch plus a cross-batch memory of earlier batches
    (``memory_size > 0``, Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020).
    Reference ``j < B`` is query ``j`` itself and never counts as its positive. A loss whose
    constructor forwards ``**kwargs`` here takes ``memory_size``; one that does not, takes none.
    """

    def __init__(self, memory_size: int = 0, embedding_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.memory_size = int(memory_size)
        self.memory = None
        if self.memory_size:
            if not embedding_dim:
                raise ValueError(f"loss {self.name!r}: a cross-batch memory needs embedding_dim")
            self.memory = CrossBatchMemory(self.memory_size, int(embedding_dim))

    def call(self, labels: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
        embeddings = tf.convert_to_tensor(y_pred, tf.float32)
        labels, embeddings = gather_global_batch(labels, embeddings)
        if self.memory is None:
            return self.compute(labels, embeddings, labels, embeddings)
        ref_labels, ref_emb = self.memory.references(labels, embeddings)
        value = self.compute(labels, embeddings, ref_labels, ref_emb)
        with tf.control_dependencies([value]):
            self.memory.enqueue(labels, embeddings)
        return tf.identity(value)

    def compute(
        self,
        labels: tf.Tensor,
        embeddings: tf.Tensor,
        ref_labels: tf.Tensor,
        ref_embeddings: tf.Tensor,
    ) -> tf.Tensor:
        """The loss of one (global) batch of queries against the references."""
        raise NotImplementedError


def reference_masks(labels: tf.Tensor, ref_labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(positive, negative)`` ``[B, R]`` masks.

    Reference ``i`` is query ``i`` itself, so it is never a positive of ``i``.
    """
    same = tf.equal(labels[:, None], ref_labels[None, :])
    b, r = tf.shape(labels)[0], tf.shape(ref_labels)[0]
    is_self = tf.eye(b, r, dtype=tf.bool)
    return tf.logical_and(same, tf.logical_not(is_self)), tf.logical_not(same)
