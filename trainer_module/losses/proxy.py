"""Proxy losses: learned class representatives (proxies, class centres) that train with the model.

Labels are class ids in ``[0, C)`` (Transform's label vocabulary); the class count comes from
the model (``num_classes``), the proxies' width from the embedding (``embedding_dim``).
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfx_metric_learning.core.stage_settings import non_negative, positive
from tfx_metric_learning.trainer_module.distances import safe_l2_normalize, safe_sqrt
from tfx_metric_learning.trainer_module.losses.base import (
    Loss,
    MetricLoss,
    masked_logsumexp,
    masked_mean,
)
from tfx_metric_learning.trainer_module.losses.declare import Check, register


@register("proxy_anchor", alpha=Check(positive, "scale"), delta=Check(non_negative, "margin"))
class ProxyAnchorLoss(MetricLoss):
    """Proxy-Anchor loss (Kim et al., CVPR 2020), one learned proxy per class.

    With ``s(x, p)`` the cosine similarity of an embedding and a proxy, ``P+`` the proxies
    whose class is in the batch, ``X_p+`` / ``X_p-`` the batch embeddings of / not of class p:

    ``L = 1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} exp(-alpha (s(x,p) - delta)))
        + 1/|P|  sum_{p in P}  log(1 + sum_{x in X_p-} exp( alpha (s(x,p) + delta)))``

    Labels: class ids in ``[0, C)``. Defaults (paper): ``alpha=32``, ``delta=0.1``.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float = 32.0, delta: float = 0.1
    ):
        super().__init__()
        self.num_classes = int(num_classes)
        self.alpha, self.delta = float(alpha), float(delta)
        self.proxies = self.add_weight(
            name="proxies",
            shape=(self.num_classes, int(embedding_dim)),
            initializer=tf.keras.initializers.HeNormal(seed=0),
        )

    def compute(self, labels, embeddings, ref_labels, ref_embeddings):
        sim = tf.matmul(
            safe_l2_normalize(embeddings), safe_l2_normalize(self.proxies), transpose_b=True
        )  # [B, C]
        member = tf.cast(tf.one_hot(tf.cast(labels, tf.int32), self.num_classes), tf.bool)
        pos_lse = masked_logsumexp(
            tf.transpose(-self.alpha * (sim - self.delta)), tf.transpose(member)
        )  # [C]
        neg_lse = masked_logsumexp(
            tf.transpose(self.alpha * (sim + self.delta)), tf.transpose(tf.logical_not(member))
        )
        with_pos = tf.reduce_any(member, axis=0)
        pos_term = masked_mean(tf.nn.softplus(pos_lse), with_pos)
        neg_term = tf.reduce_mean(tf.nn.softplus(neg_lse))
        return pos_term + neg_term


@register("arcface", scale=Check(positive, "s"))
class ArcFaceLoss(Loss):
    """ArcFace, additive angular margin (Deng et al., CVPR 2019).

    Learned class centres ``W`` (unit rows); ``cos t_c = e . W_c`` for the unit embedding
    ``e``. The target logit becomes ``cos(t_y + m)``, others stay ``cos t_c``, all scaled by
    ``s``, then softmax cross-entropy. Where ``t_y + m > pi`` (``cos t_y < cos(pi - m)``), the
    target logit is ``cos t_y - m sin(m)`` instead, as in the authors' code, so it stays
    monotonic. ``cos(t + m)`` is expanded as ``cos t cos m - sin t sin m`` (no ``acos``).
    Labels: class ids in ``[0, C)``. Defaults (paper): ``scale=64``, ``margin=0.5``.
    """

    def __init__(
        self, num_classes: int, embedding_dim: int, scale: float = 64.0, margin: float = 0.5
    ):
        super().__init__()
        self.num_classes = int(num_classes)
        self.scale, self.margin = float(scale), float(margin)
        self.centres = self.add_weight(
            name="centres",
            shape=(self.num_classes, int(embedding_dim)),
            initializer=tf.keras.initializers.GlorotUniform(seed=0),
        )

    def call(self, labels, y_pred):
        ids = tf.reshape(tf.cast(labels, tf.int32), [-1])
        cos = tf.matmul(
            safe_l2_normalize(y_pred), safe_l2_normalize(self.centres), transpose_b=True
        )
        cos = tf.clip_by_value(cos, -1.0, 1.0)
        sin = safe_sqrt(1.0 - tf.square(cos))
        m = self.margin
        with_margin = cos * math.cos(m) - sin * math.sin(m)
        with_margin = tf.where(cos > math.cos(math.pi - m), with_margin, cos - m * math.sin(m))
        onehot = tf.one_hot(ids, self.num_classes)
        logits = self.scale * (onehot * with_margin + (1.0 - onehot) * cos)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)
        )
