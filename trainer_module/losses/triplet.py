"""Triplet losses: offline triplets (one or K negatives) and online mining (semi-hard, hard, all).

Online losses take class ids and embeddings and mine over the global batch (and the
cross-batch memory when enabled). Offline losses take stacked embeddings
``[B, 3, D]`` (anchor, positive, negative) or ``[B, 2 + K, D]``. Distances come from
``trainer_module.distances``; nothing here re-implements one.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.core.stage_settings import at_least, one_of
from tfx_metric_learning.trainer_module import mining
from tfx_metric_learning.trainer_module.distances import Distance
from tfx_metric_learning.trainer_module.losses.base import (
    Loss,
    MetricLoss,
    masked_mean,
    reference_masks,
    resolve_distance,
    warn_if_empty,
)
from tfx_metric_learning.trainer_module.losses.declare import Check, register


@register("triplet")
class TripletLoss(Loss):
    """Triplet margin loss on offline triplets (Schroff et al., "FaceNet", CVPR 2015).

    ``L = mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + m)``

    - ``distance="squared_l2"`` gives FaceNet's ``max(0, ||a-p||^2 - ||a-n||^2 + m)``;
    - ``distance="l2"`` the same with Euclidean distances;
    - ``distance="cosine"`` gives ``max(0, m + cos(a, n) - cos(a, p))`` (cosine distance is
      ``1 - cos``, so ``d_ap - d_an = cos(a, n) - cos(a, p)``).

    Input: ``y_pred`` ``[B, 3, D]`` (anchor, positive, negative); labels are ignored (the
    triplet structure is the label). Defaults: ``squared_l2``, ``margin=0.2`` (FaceNet's
    alpha for unit-norm embeddings).
    """

    input_mode = "triplets"

    def __init__(self, margin: float = 0.2, distance: str | Distance = "squared_l2"):
        super().__init__()
        self.margin = float(margin)
        self.distance = resolve_distance(distance)

    def call(self, labels, y_pred):
        anchor, positive, negative = tf.unstack(y_pred, num=3, axis=1)
        d_ap = self.distance.paired(anchor, positive)
        d_an = self.distance.paired(anchor, negative)
        return tf.reduce_mean(tf.nn.relu(d_ap - d_an + self.margin))


@register("triplet_k_negatives", num_negatives=Check(at_least(1), "K negatives per anchor"))
class TripletKNegativesLoss(Loss):
    """Triplet loss with an explicit set of K negatives per anchor; the most violating counts.

    ``L = mean_i max(0, d(a_i, p_i) - min_k d(a_i, n_ik) + m)``

    (the hardest of the K negatives, as in the "multiple negatives" form of the triplet
    loss; Hermans et al., "In Defense of the Triplet Loss", 2017, use the same max-violation
    idea over a batch). Input: ``[B, 2 + K, D]`` = anchor, positive, K negatives; labels are
    ignored. ``num_negatives`` is K: PairGen builds that many negatives per anchor for this
    loss, and the loss refuses an input with another count. Defaults: ``squared_l2``,
    ``margin=0.2``, ``num_negatives=5``.
    """

    input_mode = "triplets_k"

    def __init__(
        self, margin: float = 0.2, distance: str | Distance = "squared_l2", num_negatives: int = 5
    ):
        super().__init__()
        self.margin = float(margin)
        self.distance = resolve_distance(distance)
        self.num_negatives = int(num_negatives)

    def call(self, labels, y_pred):
        anchor, positive, negatives = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2:]
        k = negatives.shape[1]
        if k is not None and k != self.num_negatives:
            raise ValueError(
                f"loss {self.name!r}: input has {k} negatives per anchor, "
                f"num_negatives is {self.num_negatives}"
            )
        k = tf.shape(negatives)[1]
        d_ap = self.distance.paired(anchor, positive)
        flat_anchor = tf.repeat(anchor, k, axis=0)
        flat_neg = tf.reshape(negatives, [-1, tf.shape(negatives)[-1]])
        d_an = tf.reshape(self.distance.paired(flat_anchor, flat_neg), [-1, k])
        return tf.reduce_mean(tf.nn.relu(d_ap - tf.reduce_min(d_an, axis=1) + self.margin))


@register("triplet_semihard", fallback=Check(one_of("hardest", "easiest"), "when no semi-hard"))
class TripletSemiHardLoss(MetricLoss):
    """Triplet loss with online semi-hard negative mining (Schroff et al., FaceNet 2015).

    For every anchor-positive pair ``(a, p)`` (same label, ``a != p``), the negative is the
    closest ``n`` with ``d(a, n) > d(a, p)``; when none is that far, the hardest (closest)
    negative of ``a`` (``fallback="easiest"``: the farthest).

    ``L = mean_{(a,p)} max(0, d(a, p) - d(a, n*(a, p)) + m)``

    Labels: class ids; anchors without a positive or a negative contribute nothing; a batch
    without any valid triplet gives 0 and a warning. O(B^2) memory: one row-wise sort, one
    binary search.

    Defaults: ``distance="l2"``, ``margin=1.0``, ``fallback="hardest"``. Conventions differ:
    TensorFlow Addons' ``TripletSemiHardLoss`` (0.4-0.7, as ``tf.contrib``'s
    ``triplet_semihard_loss``) used margin 1.0 on *squared* Euclidean distances and fell back
    to the *easiest* negative (``distance="squared_l2", fallback="easiest"`` reproduces it;
    TFA 0.8 added ``distance_metric``, default Euclidean); pytorch-metric-learning pairs a
    semi-hard miner with ``TripletMarginLoss`` (margin 0.05, Euclidean on unit vectors).
    """

    def __init__(
        self,
        margin: float = 1.0,
        distance: str | Distance = "l2",
        fallback: str = "hardest",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.distance = resolve_distance(distance)
        self.fallback = fallback

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        dist = self.distance.pairwise(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)
        d_an, has_negative = mining.semihard_negative_distances(dist, negative, self.fallback)
        valid = tf.logical_and(positive, has_negative[:, None])
        return masked_mean(tf.nn.relu(dist - d_an + self.margin), valid, self.name)


@register("triplet_hard")
class TripletHardLoss(MetricLoss):
    """Batch-hard triplet loss (Hermans et al., "In Defense of the Triplet Loss", 2017).

    ``L = mean_a max(0, max_{p in P(a)} d(a, p) - min_{n in N(a)} d(a, n) + m)``

    over anchors with at least one positive and one negative. ``soft=True`` is the paper's
    soft margin, ``softplus(max_p d(a, p) - min_n d(a, n))``, which has no margin: ``margin``
    is then not used (as TensorFlow Addons' ``triplet_hard_loss(soft=True)``).
    Defaults: ``l2``, ``margin=1.0``, ``soft=False``.
    """

    def __init__(
        self, margin: float = 1.0, distance: str | Distance = "l2", soft: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.distance = resolve_distance(distance)
        self.soft = bool(soft)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        dist = self.distance.pairwise(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)
        hardest_pos = mining.masked_max(dist, positive)
        hardest_neg = mining.masked_min(dist, negative)
        valid = tf.logical_and(tf.reduce_any(positive, 1), tf.reduce_any(negative, 1))
        gap = hardest_pos - hardest_neg
        per_anchor = tf.nn.softplus(gap) if self.soft else tf.nn.relu(gap + self.margin)
        return masked_mean(per_anchor, valid, self.name)


@register("triplet_all")
class TripletAllLoss(MetricLoss):
    """Batch-all triplet loss (Hermans et al. 2017): every valid triplet of the batch.

    ``L = sum_{(a,p,n)} max(0, d(a,p) - d(a,n) + m) / #{(a,p,n): d(a,p) - d(a,n) + m > 0}``

    (the mean over the triplets that are not yet satisfied; 0 when all are). Computed one
    anchor at a time, so memory stays O(B^2). Defaults: ``l2``, ``margin=1.0``.
    """

    def __init__(self, margin: float = 1.0, distance: str | Distance = "l2", **kwargs):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.distance = resolve_distance(distance)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        dist = self.distance.pairwise(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)

        def per_anchor(args):
            d, pos, neg = args
            losses = d[:, None] - d[None, :] + self.margin  # [p, n]
            valid = tf.logical_and(pos[:, None], neg[None, :])
            hinge = tf.where(valid, tf.nn.relu(losses), tf.zeros_like(losses))
            active = tf.reduce_sum(tf.cast(tf.logical_and(valid, losses > 0), tf.float32))
            return tf.stack([tf.reduce_sum(hinge), active])

        sums = tf.map_fn(per_anchor, (dist, positive, negative), fn_output_signature=tf.float32)
        total, active = tf.reduce_sum(sums[:, 0]), tf.reduce_sum(sums[:, 1])
        any_valid = tf.reduce_sum(
            tf.cast(
                tf.logical_and(tf.reduce_any(positive, 1), tf.reduce_any(negative, 1)), tf.int32
            )
        )
        warn_if_empty(any_valid, self.name)
        return tf.math.divide_no_nan(total, active)
