"""Triplet losses: offline triplets and online semi-hard mining."""

from __future__ import annotations

import tensorflow as tf

from trainer_module import mining
from trainer_module.distances import Distance, get_distance
from trainer_module.losses.base import MetricLoss, masked_mean


class TripletLoss(tf.keras.losses.Loss):
    """Triplet margin loss on offline triplets (Schroff et al., "FaceNet", CVPR 2015).

    ``L = mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + m)``

    - ``distance="squared_l2"`` gives FaceNet's ``max(0, ||a-p||^2 - ||a-n||^2 + m)``;
    - ``distance="l2"`` the same with Euclidean distances;
    - ``distance="cosine"`` gives ``max(0, m + cos(a, n) - cos(a, p))`` (cosine distance is
      ``1 - cos``, so ``d_ap - d_an = cos(a, n) - cos(a, p)``).

    Input: ``y_pred`` of shape ``[B, 3, D]`` holding (anchor, positive, negative) embeddings;
    ``y_true`` is ignored (the triplet structure is the label). Defaults: ``squared_l2``,
    ``margin=0.2`` (FaceNet's alpha for unit-norm embeddings).
    """

    def __init__(self, margin: float = 0.2, distance: str | Distance = "squared_l2"):
        super().__init__(name="triplet", reduction=tf.keras.losses.Reduction.AUTO)
        self.margin = float(margin)
        self.distance = get_distance(distance) if isinstance(distance, str) else distance

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        anchor, positive, negative = tf.unstack(y_pred, num=3, axis=1)
        d_ap = self.distance.paired(anchor, positive)
        d_an = self.distance.paired(anchor, negative)
        return tf.reduce_mean(tf.nn.relu(d_ap - d_an + self.margin))


class TripletSemiHardLoss(MetricLoss):
    """Triplet loss with online semi-hard negative mining (Schroff et al., FaceNet 2015).

    For every anchor-positive pair ``(a, p)`` of the batch (same label, ``a != p``), the
    negative is the closest ``n`` with ``d(a, n) > d(a, p)``; when none is that far, the
    hardest (closest) negative of ``a`` is used (``fallback="easiest"`` takes the farthest,
    as TensorFlow Addons' ``TripletSemiHardLoss`` did).

    ``L = mean_{(a,p)} max(0, d(a, p) - d(a, n*(a, p)) + m)``

    Labels: integer class ids; anchors with no positive or no negative contribute nothing,
    and a batch without any valid triplet gives 0. Mining runs over the global batch under
    ``MirroredStrategy``. Defaults: ``distance="l2"``, ``margin=1.0`` (TensorFlow Addons).
    """

    def __init__(
        self, margin: float = 1.0, distance: str | Distance = "l2", fallback: str = "hardest"
    ):
        super().__init__(name="triplet_semihard")
        self.margin = float(margin)
        self.distance = get_distance(distance) if isinstance(distance, str) else distance
        self.fallback = fallback

    def compute(self, labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
        dist = self.distance.pairwise(embeddings)
        positive, negative = mining.label_masks(labels)
        d_an, has_negative = mining.semihard_negative_distances(dist, negative, self.fallback)
        valid = tf.logical_and(positive, has_negative[:, None])
        return masked_mean(tf.nn.relu(dist - d_an + self.margin), valid)
