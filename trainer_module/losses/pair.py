"""Pair losses: a score per (left, right) pair of embeddings against a similar/dissimilar target.

Input: targets ``y [B]`` and ``y_pred [B, 2, D]`` (left, right). By default ``y = 1`` means
"similar" (what PairGen writes); ``similar_label=0`` flips the convention for data that uses
``0`` for similar (Hadsell et al.'s own convention). Inside every loss ``t`` is the target with
1 = similar, and ``c = cos(left, right)`` the cosine similarity of the pair.

How each classic Keras loss is applied to a pair (the "score against target" mapping):

- ``binary_crossentropy``: ``BCE(t, sigmoid(w * c + b))`` with a learned scale ``w`` (init 10)
  and bias ``b`` (init -5);
- ``hinge``: ``max(0, 1 - t' c)`` and ``squared_hinge``: ``max(0, 1 - t' c)^2``, with
  ``t' = 2t - 1`` in ``{-1, +1}`` (Keras' hinge convention);
- ``mean_squared_error``: ``(t - s)^2``, ``mean_absolute_error``: ``|t - s|``,
  ``huber``: Huber(``t - s``, ``delta``), ``log_cosh``: ``log(cosh(t - s))``, where
  ``s = (1 + c) / 2`` maps the cosine into ``[0, 1]``;
- ``cosine_similarity``: ``-t' c`` (Keras' cosine-similarity loss is ``-cos``; dissimilar
  pairs are pushed towards ``c = -1``).

Each loss is the mean over the pairs of the batch.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.core.stage_settings import any_number, positive
from tfx_metric_learning.trainer_module.distances import Distance, safe_l2_normalize, safe_sqrt
from tfx_metric_learning.trainer_module.losses.base import Loss, resolve_distance
from tfx_metric_learning.trainer_module.losses.declare import Check, register


class PairLoss(Loss):
    """Base of pair losses: splits ``y_pred`` and normalises the target to 1 = similar."""

    input_mode = "pairs"

    def __init__(self, similar_label: int = 1):
        super().__init__()
        if similar_label not in (0, 1):
            raise ValueError(f"similar_label must be 0 or 1, got {similar_label!r}")
        self.similar_label = int(similar_label)

    def targets(self, labels: tf.Tensor) -> tf.Tensor:
        """``t`` in ``{0., 1.}`` with 1 = similar."""
        y = tf.cast(tf.reshape(labels, [-1]), tf.float32)
        return y if self.similar_label == 1 else 1.0 - y

    @staticmethod
    def cosine(y_pred: tf.Tensor) -> tf.Tensor:
        """Cosine similarity of each (left, right) pair."""
        left, right = tf.unstack(y_pred, num=2, axis=1)
        return tf.reduce_sum(safe_l2_normalize(left) * safe_l2_normalize(right), axis=-1)

    def call(self, labels, y_pred):
        return tf.reduce_mean(self.per_pair(self.targets(labels), y_pred))

    def per_pair(self, t: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


@register("contrastive", factor=Check(positive, "0.5 as in the paper, 1 without"))
class ContrastiveLoss(PairLoss):
    """Contrastive loss (Hadsell, Chopra, LeCun, CVPR 2006).

    From "Dimensionality Reduction by Learning an Invariant Mapping".

    ``L = factor * [ t * D^2 + (1 - t) * max(0, m - D)^2 ]``, ``D = d(left, right)``,

    which with ``factor = 0.5`` and Hadsell's ``Y = 1 - t`` is the paper's
    ``0.5 (1 - Y) D^2 + 0.5 Y max(0, m - D)^2``. Defaults: ``distance="l2"``, ``margin=1.0``,
    ``factor=0.5``, ``similar_label=1`` (set 0 for Hadsell's own labels).
    """

    def __init__(
        self,
        margin: float = 1.0,
        distance: str | Distance = "l2",
        factor: float = 0.5,
        similar_label: int = 1,
    ):
        super().__init__(similar_label)
        self.margin = float(margin)
        self.factor = float(factor)
        self.distance = resolve_distance(distance)

    def per_pair(self, t, y_pred):
        left, right = tf.unstack(y_pred, num=2, axis=1)
        d = self.distance.paired(left, right)
        if self.distance.name == "squared_l2":  # D^2 is then the squared distance itself
            d_sq, d_lin = d, safe_sqrt(d)
        else:
            d_sq, d_lin = tf.square(d), d
        return self.factor * (t * d_sq + (1.0 - t) * tf.square(tf.nn.relu(self.margin - d_lin)))


@register(
    "binary_crossentropy",
    scale=Check(positive, "initial scale w"),
    bias=Check(any_number, "initial bias b"),
)
class BinaryCrossentropyPairLoss(PairLoss):
    """``BCE(t, sigmoid(w * cos + b))``, learned ``w`` (init ``scale``), ``b`` (init ``bias``)."""

    def __init__(self, scale: float = 10.0, bias: float = -5.0, similar_label: int = 1):
        super().__init__(similar_label)
        self.scale = self.add_weight(
            name="scale", shape=(), initializer=tf.keras.initializers.Constant(scale)
        )
        self.bias = self.add_weight(
            name="bias", shape=(), initializer=tf.keras.initializers.Constant(bias)
        )

    def per_pair(self, t, y_pred):
        logits = self.scale * self.cosine(y_pred) + self.bias
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=logits)


class CosinePairLoss(PairLoss):
    """A pair loss of the target ``t`` and the pair's cosine ``c``: ``score(t, c)``.

    These losses fix the cosine similarity (no ``distance`` parameter): they map it into the
    range of a classic Keras loss, as the module doc says.
    """

    def per_pair(self, t, y_pred):
        return self.score(t, self.cosine(y_pred))

    def score(self, t: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


def _hinge(t, c):
    return tf.nn.relu(1.0 - (2.0 * t - 1.0) * c)


def _unit(c):
    return (1.0 + c) / 2.0


@register("hinge")
class Hinge(CosinePairLoss):
    """``max(0, 1 - t' cos)``, ``t' = +1`` similar / ``-1`` dissimilar."""

    def score(self, t, c):
        return _hinge(t, c)


@register("squared_hinge")
class SquaredHinge(CosinePairLoss):
    """``max(0, 1 - t' cos)^2``."""

    def score(self, t, c):
        return tf.square(_hinge(t, c))


@register("mean_squared_error")
class MeanSquaredError(CosinePairLoss):
    """``(t - (1 + cos)/2)^2``."""

    def score(self, t, c):
        return tf.square(t - _unit(c))


@register("mean_absolute_error")
class MeanAbsoluteError(CosinePairLoss):
    """``|t - (1 + cos)/2|``."""

    def score(self, t, c):
        return tf.abs(t - _unit(c))


@register("huber", delta=Check(positive, "Huber delta"))
class Huber(CosinePairLoss):
    """Huber of ``e = t - (1 + cos)/2``.

    ``e^2 / 2`` if ``|e| <= delta``, else ``delta (|e| - delta / 2)``.
    """

    def __init__(self, delta: float = 1.0, similar_label: int = 1):
        super().__init__(similar_label)
        self.delta = float(delta)

    def score(self, t, c):
        e = tf.abs(t - _unit(c))
        return tf.where(e <= self.delta, 0.5 * tf.square(e), self.delta * (e - 0.5 * self.delta))


@register("log_cosh")
class LogCosh(CosinePairLoss):
    """``log(cosh(t - (1 + cos)/2))``, computed as ``e + softplus(-2e) - log 2``."""

    def score(self, t, c):
        e = t - _unit(c)
        return e + tf.nn.softplus(-2.0 * e) - tf.math.log(2.0)


@register("cosine_similarity")
class CosineSimilarity(CosinePairLoss):
    """``-t' cos``: similar pairs towards ``cos = 1``, dissimilar towards ``cos = -1``."""

    def score(self, t, c):
        return -(2.0 * t - 1.0) * c
