"""The embedding model and the training wrappers each loss family needs.

The encoder maps a transformed feature vector ``[F]`` to an L2-normalised embedding ``[D]``;
it is the only part exported. Training wrappers add what a loss consumes: a class head for
classification losses, a shared encoder over (anchor, positive, negative) for triplets.
"""

from __future__ import annotations

import tensorflow as tf

from trainer_module.losses.registry import LossSpec

EMBEDDING_KEY = "embedding"
TRIPLET_KEYS = ("anchor", "positive", "negative")


def build_encoder(
    input_dim: int, hidden_units: list[int], embedding_dim: int, seed: int = 0
) -> tf.keras.Model:
    """MLP ``[F] -> hidden (ReLU) ... -> [D] -> x / ||x||``."""
    inputs = tf.keras.Input(shape=(input_dim,), name="features", dtype=tf.float32)
    x = inputs
    for i, units in enumerate(hidden_units):
        init = tf.keras.initializers.GlorotUniform(seed=seed + i)
        x = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init)(x)
    init = tf.keras.initializers.GlorotUniform(seed=seed + len(hidden_units))
    x = tf.keras.layers.Dense(embedding_dim, kernel_initializer=init, name="projection")(x)
    outputs = tf.keras.layers.UnitNormalization(axis=-1, name=EMBEDDING_KEY)(x)
    return tf.keras.Model(inputs, outputs, name="encoder")


def build_training_model(
    encoder: tf.keras.Model, spec: LossSpec, num_classes: int | None, seed: int = 0
) -> tf.keras.Model:
    """The model ``fit`` trains for the loss ``spec``; it shares its weights with ``encoder``."""
    input_dim = encoder.input_shape[-1]
    if spec.input_mode == "triplets":
        inputs = {k: tf.keras.Input(shape=(input_dim,), name=k) for k in TRIPLET_KEYS}
        stacked = tf.stack([encoder(inputs[k]) for k in TRIPLET_KEYS], axis=1)
        return tf.keras.Model(inputs, stacked, name="triplet_trainer")
    if spec.needs_num_classes:
        inputs = tf.keras.Input(shape=(input_dim,), name="features")
        init = tf.keras.initializers.GlorotUniform(seed=seed + 1000)
        logits = tf.keras.layers.Dense(num_classes, kernel_initializer=init, name="class_head")(
            encoder(inputs)
        )
        return tf.keras.Model(inputs, logits, name="classifier_trainer")
    return encoder
