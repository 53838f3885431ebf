"""Ranking losses: a positive ranked above negatives, by softmax, log-sum-exp or a logistic.

``pairwise_ranking`` takes offline triplets; the others a labelled batch, mined over the
global batch.

Notation: ``S[i, j]`` is the cosine similarity of query ``i`` and reference ``j`` (the batch,
plus the cross-batch memory when enabled), ``P(i)`` the positives of ``i`` (same label,
``j != i``), ``N(i)`` its negatives, ``T`` a temperature. ``lse`` is log-sum-exp. Anchors with
no positive (or, where the formula needs one, no negative) contribute nothing; a batch with
no valid anchor gives 0 and a warning. ``log(1 + sum exp(x))`` is computed as
``softplus(lse(x))``.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.core.stage_settings import any_number, non_negative, positive
from tfx_metric_learning.trainer_module.distances import Cosine, Distance
from tfx_metric_learning.trainer_module.losses.base import (
    Loss,
    MetricLoss,
    masked_logsumexp,
    masked_mean,
    reference_masks,
    resolve_distance,
)
from tfx_metric_learning.trainer_module.losses.declare import Check, register


def _similarity(embeddings: tf.Tensor, ref_embeddings: tf.Tensor) -> tf.Tensor:
    return 1.0 - Cosine().pairwise(embeddings, ref_embeddings)


def _has_both(positive: tf.Tensor, negative: tf.Tensor) -> tf.Tensor:
    return tf.logical_and(tf.reduce_any(positive, 1), tf.reduce_any(negative, 1))


@register("pairwise_ranking")
class PairwiseRankingLoss(Loss):
    """RankNet logistic ranking loss on offline triplets (Burges et al., ICML 2005).

    ``L = mean_i log(1 + exp(-(s(a_i, p_i) - s(a_i, n_i)) / T))``, with the similarity
    ``s = -d`` for the chosen distance (``cosine`` by default, so ``s`` is the cosine
    similarity) and temperature ``T`` (default 1; RankNet's sigma is ``1/T``).
    Input: ``[B, 3, D]``; labels ignored.
    """

    input_mode = "triplets"

    def __init__(self, distance: str | Distance = "cosine", temperature: float = 1.0):
        super().__init__()
        self.distance = resolve_distance(distance)
        self.temperature = float(temperature)

    def call(self, labels, y_pred):
        anchor, positive, negative = tf.unstack(y_pred, num=3, axis=1)
        margin = self.distance.paired(anchor, negative) - self.distance.paired(anchor, positive)
        return tf.reduce_mean(tf.nn.softplus(-margin / self.temperature))


@register("npairs")
class NPairsLoss(MetricLoss):
    """Multi-class N-pair loss (Sohn, NeurIPS 2016), on cosine similarities with ``T = 1``.

    For every anchor-positive pair ``(a, p)``:

    ``l(a, p) = -log( exp(S_ap / T) / (exp(S_ap / T) + sum_{n in N(a)} exp(S_an / T)) )``
    ``       = softplus( lse_{n in N(a)}(S_an / T) - S_ap / T )``

    ``L`` is the mean over all anchor-positive pairs. ``S`` is the cosine similarity (the inner
    product of unit vectors), so ``npairs`` and ``infonce`` differ only in ``T``. Sohn used raw
    inner products of unnormalised embeddings with an L2 penalty on their norms, as does
    pytorch-metric-learning's ``NPairsLoss`` (dot-product similarity); on unit vectors with
    ``T = 1`` the logits span only [-1, 1], a weaker push than Sohn's.
    """

    def __init__(self, temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        logits = _similarity(embeddings, ref_embeddings) / self.temperature
        positive, negative = reference_masks(labels, ref_labels)
        neg_lse = masked_logsumexp(logits, negative)  # [B], -inf without negatives
        terms = tf.nn.softplus(neg_lse[:, None] - logits)
        return masked_mean(terms, positive, self.name)


@register("infonce")
class InfoNCELoss(NPairsLoss):
    """InfoNCE (van den Oord et al., 2018): the N-pair loss above with ``T = 0.1``."""

    def __init__(self, temperature: float = 0.1, **kwargs):
        super().__init__(temperature, **kwargs)


@register("supcon")
class SupConLoss(MetricLoss):
    """Supervised contrastive loss (Khosla et al., "Supervised Contrastive Learning", 2020).

    ``L_i = -1/|P(i)| sum_{p in P(i)} [ S_ip / T - lse_{a != i}(S_ia / T) ]``

    (the paper's L_out), averaged over anchors with at least one positive and one negative
    (an anchor without negatives has nothing to contrast with). Default ``T = 0.1``.
    """

    def __init__(self, temperature: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        logits = _similarity(embeddings, ref_embeddings) / self.temperature
        positive, negative = reference_masks(labels, ref_labels)
        b, r = tf.shape(labels)[0], tf.shape(ref_labels)[0]
        not_self = tf.logical_not(tf.eye(b, r, dtype=tf.bool))
        log_denominator = masked_logsumexp(logits, not_self)
        log_prob = logits - log_denominator[:, None]
        pos_f = tf.cast(positive, tf.float32)
        n_pos = tf.reduce_sum(pos_f, axis=1)
        per_anchor = -tf.math.divide_no_nan(
            tf.reduce_sum(tf.where(positive, log_prob, tf.zeros_like(log_prob)), 1), n_pos
        )
        return masked_mean(per_anchor, _has_both(positive, negative), self.name)


@register(
    "multi_similarity",
    alpha=Check(positive, "positive scale"),
    beta=Check(positive, "negative scale"),
    base=Check(any_number, "lambda"),
    epsilon=Check(non_negative, "mining margin"),
)
class MultiSimilarityLoss(MetricLoss):
    """Multi-similarity loss with its pair mining (Wang et al., CVPR 2019).

    Mining (per anchor ``i``): keep negative ``n`` if ``S_in + eps > min_{p in P(i)} S_ip``;
    keep positive ``p`` if ``S_ip - eps < max_{n in N(i)} S_in``. Then

    ``L_i = 1/alpha log(1 + sum_{kept p} exp(-alpha (S_ip - lambda)))
          + 1/beta  log(1 + sum_{kept n} exp( beta (S_in - lambda)))``

    averaged over anchors with at least one positive and one negative. Defaults (as
    pytorch-metric-learning): ``alpha=2``, ``beta=50``, ``base (lambda)=0.5``, ``epsilon=0.1``.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        epsilon: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.alpha, self.beta, self.base, self.epsilon = map(float, (alpha, beta, base, epsilon))

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        sim = _similarity(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)
        stopped = tf.stop_gradient(sim)
        big = tf.constant(1e9)
        min_pos = tf.reduce_min(tf.where(positive, stopped, big), axis=1, keepdims=True)
        max_neg = tf.reduce_max(tf.where(negative, stopped, -big), axis=1, keepdims=True)
        keep_neg = tf.logical_and(negative, stopped + self.epsilon > min_pos)
        keep_pos = tf.logical_and(positive, stopped - self.epsilon < max_neg)
        pos_term = tf.nn.softplus(masked_logsumexp(-self.alpha * (sim - self.base), keep_pos))
        neg_term = tf.nn.softplus(masked_logsumexp(self.beta * (sim - self.base), keep_neg))
        per_anchor = pos_term / self.alpha + neg_term / self.beta
        return masked_mean(per_anchor, _has_both(positive, negative), self.name)


@register("circle", m=Check(non_negative, "relaxation margin"), gamma=Check(positive, "scale"))
class CircleLoss(MetricLoss):
    """Circle loss (Sun et al., CVPR 2020), pair-based form.

    With ``a_p = max(0, 1 + m - S_ip)``, ``a_n = max(0, S_in + m)`` (held constant, as in the
    paper's implementation), ``D_p = 1 - m``, ``D_n = m``:

    ``L_i = log(1 + sum_{n in N(i)} exp(gamma a_n (S_in - D_n))``
    ``              * sum_{p in P(i)} exp(-gamma a_p (S_ip - D_p)))``
    ``    = softplus( lse_n(gamma a_n (S_in - D_n)) + lse_p(-gamma a_p (S_ip - D_p)) )``

    averaged over anchors with a positive and a negative. Defaults (pytorch-metric-learning):
    ``m=0.4``, ``gamma=80``.
    """

    def __init__(self, m: float = 0.4, gamma: float = 80.0, **kwargs):
        super().__init__(**kwargs)
        self.m, self.gamma = float(m), float(gamma)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        sim = _similarity(embeddings, ref_embeddings)
        positive, negative = reference_masks(labels, ref_labels)
        alpha_p = tf.stop_gradient(tf.nn.relu(1.0 + self.m - sim))
        alpha_n = tf.stop_gradient(tf.nn.relu(sim + self.m))
        logit_p = -self.gamma * alpha_p * (sim - (1.0 - self.m))
        logit_n = self.gamma * alpha_n * (sim - self.m)
        per_anchor = tf.nn.softplus(
            masked_logsumexp(logit_n, negative) + masked_logsumexp(logit_p, positive)
        )
        valid = _has_both(positive, negative)
        per_anchor = tf.where(valid, per_anchor, tf.zeros_like(per_anchor))
        return masked_mean(per_anchor, valid, self.name)


@register("lifted_structure")
class LiftedStructureLoss(MetricLoss):
    """Lifted structured loss (Oh Song et al., CVPR 2016).

    From "Deep Metric Learning via Lifted Structured Feature Embedding".

    For each positive pair ``(i, j)``, with Euclidean distances ``D``:

    ``J_ij = log( sum_{k in N(i)} exp(m - D_ik) + sum_{l in N(j)} exp(m - D_jl) ) + D_ij``
    ``L = 1 / (2 |P|) sum_{(i,j) in P} max(0, J_ij)^2``

    over the unordered positive pairs ``P`` of the batch. Default ``margin=1.0``. (Needs
    distances between references, so it takes no cross-batch memory.)
    """

    def __init__(self, margin: float = 1.0, distance: str | Distance = "l2"):
        super().__init__()
        self.margin = float(margin)
        self.distance = resolve_distance(distance)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        dist = self.distance.pairwise(embeddings)
        positive, negative = reference_masks(labels, labels)
        neg_lse = masked_logsumexp(self.margin - dist, negative)  # [B]
        j = (
            tf.reduce_logsumexp(
                tf.stack(
                    [
                        tf.broadcast_to(neg_lse[:, None], tf.shape(dist)),
                        tf.broadcast_to(neg_lse[None, :], tf.shape(dist)),
                    ],
                    axis=0,
                ),
                axis=0,
            )
            + dist
        )
        j = tf.where(tf.math.is_finite(j), j, tf.zeros_like(j))
        # ordered pairs count each unordered pair twice: mean over ordered / 2
        return masked_mean(tf.square(tf.nn.relu(j)), positive, self.name) / 2.0


@register("soft_nn")
class SoftNearestNeighborLoss(MetricLoss):
    """Soft nearest neighbour loss (Frosst, Papernot, Hinton, ICML 2019).

    ``L = -1/|V| sum_{i in V} log( sum_{j in P(i)} exp(-D_ij / T) / sum_{k != i} exp(-D_ik / T) )``

    with ``D`` the squared Euclidean distance by default, over the anchors ``V`` that have a
    positive and a negative. Defaults: ``distance="squared_l2"``, ``temperature=0.1``.
    """

    def __init__(self, temperature: float = 0.1, distance: str | Distance = "squared_l2", **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.distance = resolve_distance(distance)

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        logits = -self.distance.pairwise(embeddings, ref_embeddings) / self.temperature
        positive, negative = reference_masks(labels, ref_labels)
        b, r = tf.shape(labels)[0], tf.shape(ref_labels)[0]
        not_self = tf.logical_not(tf.eye(b, r, dtype=tf.bool))
        per_anchor = masked_logsumexp(logits, not_self) - masked_logsumexp(logits, positive)
        valid = _has_both(positive, negative)
        per_anchor = tf.where(valid, per_anchor, tf.zeros_like(per_anchor))
        return masked_mean(per_anchor, valid, self.name)
