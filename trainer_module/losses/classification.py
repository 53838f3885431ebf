"""Classification losses: a dense class head on the embedding; the embedding is what is exported.

Input: class ids ``y [B]`` in ``[0, C)`` (Transform's label vocabulary) and the head's logits
``z [B, C]``; ``p = softmax(z)`` and ``q`` the one-hot target, smoothed as
``q = (1 - eps) onehot(y) + eps / C`` when ``label_smoothing = eps`` (default 0). Each loss is
the mean over the batch of:

- ``categorical_crossentropy``: ``-sum_c q_c log p_c`` (one-hot targets);
- ``sparse_categorical_crossentropy``: ``-log p_y`` (integer targets);
- ``categorical_hinge``: ``max(0, 1 + max_{c != y} z_c - z_y)`` (Keras' ``categorical_hinge``
  on the logits);
- ``kl_divergence``: ``sum_c q_c log(q_c / p_c)`` (equals the cross-entropy minus the
  target's entropy; with ``eps = 0`` it equals cross-entropy);
- ``poisson``: ``sum_c (p_c - q_c log p_c) / C`` (Keras' Poisson loss on the softmax rates).
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.trainer_module.losses.base import Loss
from tfx_metric_learning.trainer_module.losses.declare import register


class ClassificationLoss(Loss):
    """A loss of class ids against the logits of the class head."""

    input_mode = "classification"

    def __init__(self, num_classes: int, label_smoothing: float = 0.0):
        super().__init__()
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def targets(self, labels: tf.Tensor) -> tf.Tensor:
        """Smoothed one-hot targets ``[B, C]``."""
        onehot = tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), self.num_classes)
        eps = self.label_smoothing
        return onehot * (1.0 - eps) + eps / self.num_classes

    def call(self, labels, y_pred):
        return tf.reduce_mean(self.per_example(labels, tf.convert_to_tensor(y_pred)))

    def per_example(self, labels, logits):
        raise NotImplementedError


@register("categorical_crossentropy")
class CategoricalCrossentropy(ClassificationLoss):
    """Softmax cross-entropy against one-hot (optionally smoothed) targets.

    ``-sum_c q_c log p_c``.
    """

    def per_example(self, labels, logits):
        return tf.nn.softmax_cross_entropy_with_logits(self.targets(labels), logits)


@register("sparse_categorical_crossentropy")
class SparseCategoricalCrossentropy(ClassificationLoss):
    """Softmax cross-entropy against integer class ids: ``-log p_y``."""

    def __init__(self, num_classes: int):
        super().__init__(num_classes)

    def per_example(self, labels, logits):
        ids = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)


@register("categorical_hinge")
class CategoricalHinge(ClassificationLoss):
    """Categorical hinge on the logits: ``max(0, 1 + max_{c != y} z_c - z_y)``."""

    def __init__(self, num_classes: int):
        super().__init__(num_classes)

    def per_example(self, labels, logits):
        onehot = self.targets(labels)
        pos = tf.reduce_sum(onehot * logits, axis=-1)
        neg = tf.reduce_max((1.0 - onehot) * logits - onehot * 1e9, axis=-1)
        return tf.nn.relu(1.0 + neg - pos)


@register("kl_divergence")
class KLDivergence(ClassificationLoss):
    """KL divergence of the softmax from the targets: ``sum_c q_c (log q_c - log p_c)``.

    Terms with ``q_c = 0`` are 0.
    """

    def per_example(self, labels, logits):
        q = self.targets(labels)
        log_q = tf.math.log(tf.where(q > 0, q, tf.ones_like(q)))
        return tf.reduce_sum(q * (log_q - tf.nn.log_softmax(logits)), axis=-1)


@register("poisson")
class Poisson(ClassificationLoss):
    """Poisson loss on the softmax rates: ``mean_c (p_c - q_c log p_c)``."""

    def per_example(self, labels, logits):
        p = tf.nn.softmax(logits)
        return tf.reduce_mean(p - self.targets(labels) * tf.nn.log_softmax(logits), axis=-1)
