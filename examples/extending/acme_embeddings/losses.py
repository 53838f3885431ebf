"""``online_contrastive``: the contrastive loss over every pair of a labelled batch.

``L = (sum_{i,j same} max(0, d_ij - m_pos) + sum_{i,j different} max(0, m_neg - d_ij)) / N``

over the ordered pairs ``i != j`` of the (global) batch, where ``N`` counts the pairs whose
term is above zero (pytorch-metric-learning's ``ContrastiveLoss`` with its
``AvgNonZeroReducer``; Hadsell et al. 2006 for the pair loss), 0 when no pair is. ``d`` is the
Euclidean distance. Defaults ``pos_margin=0``, ``neg_margin=1``, as pytorch-metric-learning's.

It joins the library by ``@register``: importing this module registers it, and the package's
entry point (``pyproject.toml``, group ``tfx_metric_learning.losses``) has the pipeline import
it, so ``--loss online_contrastive`` works in the CLI, the Trainer and PairGen.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.core.stage_settings import non_negative
from tfx_metric_learning.trainer_module.losses.base import (
    MetricLoss,
    reference_masks,
    resolve_distance,
)
from tfx_metric_learning.trainer_module.losses.declare import Check, register


@register(
    "online_contrastive",
    pos_margin=Check(non_negative, "distance below which a same-class pair costs nothing"),
    neg_margin=Check(non_negative, "distance above which a different-class pair costs nothing"),
)
class OnlineContrastiveLoss(MetricLoss):
    """Contrastive loss over all pairs of the batch, mean over the non-zero terms."""

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)
        self.distance = resolve_distance("l2")

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        dist = self.distance.pairwise(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)
        terms = tf.where(
            positive,
            tf.nn.relu(dist - self.pos_margin),
            tf.where(negative, tf.nn.relu(self.neg_margin - dist), tf.zeros_like(dist)),
        )
        active = tf.reduce_sum(tf.cast(terms > 0, tf.float32))
        return tf.math.divide_no_nan(tf.reduce_sum(terms), active)
