"""Classification losses: a class head on the embedding; the embedding is what is exported."""

from __future__ import annotations

import tensorflow as tf


def sparse_categorical_crossentropy() -> tf.keras.losses.Loss:
    """Softmax cross-entropy ``-log softmax(z)_y`` on the logits of a dense class head.

    Labels: integer class ids in ``[0, num_classes)`` (Transform's label vocabulary).
    The head is ``Dense(num_classes)`` on the L2-normalised embedding; it is dropped at export.
    """
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
