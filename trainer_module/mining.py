"""Online miners: which pairs and triplets of a labelled batch a loss looks at.

All miners work on a pairwise distance matrix ``D[i, j] = d(x_i, x_j)`` and class-id labels.
Positives of anchor ``i`` are the ``j != i`` with ``y_j == y_i``; negatives the ``j`` with
``y_j != y_i``. Memory stays O(B^2): nothing is tiled to B^3.
"""

from __future__ import annotations

import tensorflow as tf


def semihard_negative_distances(
    dist: tf.Tensor, negative_mask: tf.Tensor, fallback: str = "hardest"
) -> tuple[tf.Tensor, tf.Tensor]:
    """FaceNet semi-hard negative for every (anchor, positive) pair.

    For anchor ``a`` and positive ``p``, the chosen negative is the closest ``n`` with
    ``D[a, n] > D[a, p]``; when no negative is that far, ``fallback`` picks among all of
    ``a``'s negatives: ``"hardest"`` (the closest) or ``"easiest"`` (the farthest, as
    TensorFlow Addons did). Done with one row-wise sort and a binary search: O(B^2 log B) time,
    O(B^2) memory.

    Returns:
        ``(d_an, has_negative)``: ``d_an[a, p]`` is ``D[a, n*(a, p)]``; ``has_negative[a]`` says
        whether anchor ``a`` has any negative at all (where it does not, ``d_an`` is 0).

    """
    if fallback not in ("hardest", "easiest"):
        raise ValueError(f"unknown fallback {fallback!r}; valid: hardest, easiest")
    big = tf.reduce_max(dist) + 1.0
    neg_dist = tf.where(negative_mask, dist, big + tf.stop_gradient(tf.zeros_like(dist)))
    order = tf.argsort(tf.stop_gradient(neg_dist), axis=1, stable=True)
    sorted_neg = tf.gather(tf.stop_gradient(neg_dist), order, batch_dims=1)
    num_neg = tf.reduce_sum(tf.cast(negative_mask, tf.int32), axis=1)  # [B]
    # first index whose distance is > D[a, p], for every p in the row
    first_farther = tf.searchsorted(sorted_neg, tf.stop_gradient(dist), side="right")
    has_semihard = first_farther < num_neg[:, None]
    if fallback == "hardest":
        fallback_idx = tf.zeros_like(first_farther)
    else:
        fallback_idx = tf.broadcast_to(tf.maximum(num_neg - 1, 0)[:, None], tf.shape(dist))
    rank = tf.where(has_semihard, first_farther, fallback_idx)
    rank = tf.minimum(rank, tf.shape(dist)[1] - 1)
    neg_index = tf.gather(order, rank, batch_dims=1)
    d_an = tf.gather(dist, neg_index, batch_dims=1)
    has_negative = num_neg > 0
    d_an = tf.where(has_negative[:, None], d_an, tf.zeros_like(d_an))
    return d_an, has_negative


def masked_max(x: tf.Tensor, mask: tf.Tensor, axis: int = 1) -> tf.Tensor:
    """Row-wise max of ``x`` over ``mask`` (0 where the mask is empty); gradient only to the max."""
    low = tf.reduce_min(x, axis=axis, keepdims=True)
    shifted = tf.where(mask, x - low, tf.zeros_like(x))
    return tf.reduce_max(shifted, axis=axis) + tf.squeeze(low, axis) * tf.cast(
        tf.reduce_any(mask, axis), x.dtype
    )


def masked_min(x: tf.Tensor, mask: tf.Tensor, axis: int = 1) -> tf.Tensor:
    """Row-wise min of ``x`` over ``mask`` (0 where the mask is empty)."""
    return -masked_max(-x, mask, axis)
