"""The embedding model and the trainer that wraps it for every loss family.

The encoder maps a transformed feature vector ``[F]`` to an L2-normalised embedding ``[D]``;
it is the only part exported. ``EmbeddingTrainer`` adds what a loss consumes (a class head
for classification losses; a shared encoder over pairs, triplets or K negatives) and trains
with a ``train_step`` that gives the same loss and gradients on N replicas as on one device.
"""

from __future__ import annotations

import tensorflow as tf

from tfx_metric_learning.core import keys
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.losses.base import Loss
from tfx_metric_learning.trainer_module.settings import ENCODERS, TrainingSettings

EMBEDDING_KEY = "embedding"


def build_encoder(
    input_dim: int,
    hidden_units: list[int],
    embedding_dim: int,
    seed: int = 0,
    kind: str = "mlp",
) -> tf.keras.Model:
    """The encoder ``[F] -> [D]``, L2-normalised; ``kind`` is one of ``ENCODERS``.

    - ``mlp``: ``x -> hidden (ReLU) ... -> Dense(D) -> / ||.||``.
    - ``residual``: ``S x + Dense_0(hidden(x)) -> / ||.||``, where the skip ``S`` (``[F, D]``,
      trained) starts as the identity when ``D == F`` and as a semi-orthogonal map otherwise
      (an isometry when ``D > F``), and the last layer ``Dense_0`` starts at zero. Before
      training the embedding is the transformed input itself (``D == F``), so its cosine
      neighbours are the inputs', and training moves away from them only as far as the loss
      pays: what keeps the structure of the inputs for classes never trained on.
    """
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}; valid: {', '.join(ENCODERS)}")
    inputs = tf.keras.Input(shape=(input_dim,), name=keys.FEATURES, dtype=tf.float32)
    x = inputs
    for i, units in enumerate(hidden_units):
        init = tf.keras.initializers.GlorotUniform(seed=seed + i)
        x = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init)(x)
    if kind == "residual":
        skip_init = (
            tf.keras.initializers.Identity()
            if embedding_dim == input_dim
            else tf.keras.initializers.Orthogonal(seed=seed + len(hidden_units) + 1)
        )
        skip = tf.keras.layers.Dense(
            embedding_dim, use_bias=False, kernel_initializer=skip_init, name="skip"
        )(inputs)
        delta = tf.keras.layers.Dense(embedding_dim, kernel_initializer="zeros", name="projection")(
            x
        )
        x = tf.keras.layers.Add(name="residual")([skip, delta])
    else:
        init = tf.keras.initializers.GlorotUniform(seed=seed + len(hidden_units))
        x = tf.keras.layers.Dense(embedding_dim, kernel_initializer=init, name="projection")(x)
    outputs = tf.keras.layers.UnitNormalization(axis=-1, name=EMBEDDING_KEY)(x)
    return tf.keras.Model(inputs, outputs, name="encoder")


class EmbeddingTrainer(tf.keras.Model):
    """Trains ``encoder`` with ``loss`` (a loss layer of the library, see ``losses.base``).

    The model's inputs are those of the loss's ``input_mode``: a feature batch, or the
    vectors of PairGen's pairs or triplets by their keys (``keys.VECTOR_KEYS``); a
    classification loss gets a class head of ``num_classes`` on the embedding.

    ``train_step`` computes the loss each replica returns (the global-batch loss for mining
    losses, the local mean for per-example losses), scales it by ``1/replicas`` and lets the
    optimizer sum the gradients over replicas: the same update as one device on the global
    batch (per-example losses need equal replica batches, which fixed-size batches give).
    """

    def __init__(
        self,
        encoder: tf.keras.Model,
        loss: Loss,
        num_classes: int | None = None,
        seed: int = 0,
    ):
        super().__init__(name="embedding_trainer")
        self.encoder = encoder
        self.loss_layer = loss
        self.input_mode = loss.input_mode
        self.head = None
        if self.input_mode == "classification":
            self.head = tf.keras.layers.Dense(
                num_classes,
                kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1000),
                name="class_head",
            )
            self.head.build((None, encoder.output_shape[-1]))

    def build_optimizer(self) -> None:
        """Creates the compiled optimizer's slot variables now, not in ``fit``'s first trace.

        Every weight of the model and of its loss exists from construction (the class head
        is built in ``__init__``); with the optimizer's slots created here too, ``fit``
        traces its train step once, where a first trace that creates variables makes
        ``tf.function`` trace it a second time (about 3 s on the digits demo).
        """
        self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=False):
        enc = self.encoder
        if self.input_mode == "labelled":
            return enc(inputs, training=training)
        if self.input_mode == "classification":
            return self.head(enc(inputs, training=training))
        if self.input_mode in ("pairs", "triplets"):
            vectors = keys.VECTOR_KEYS[self.input_mode]
            return tf.stack([enc(inputs[k], training=training) for k in vectors], axis=1)
        negatives = inputs[keys.NEGATIVES]  # [B, K, F]
        shape = tf.shape(negatives)
        flat = enc(tf.reshape(negatives, [-1, negatives.shape[-1]]), training=training)
        neg_emb = tf.reshape(flat, [shape[0], shape[1], flat.shape[-1]])
        anchor = enc(inputs[keys.ANCHOR], training=training)[:, None]
        positive = enc(inputs[keys.POSITIVE], training=training)[:, None]
        return tf.concat([anchor, positive, neg_emb], axis=1)

    def _loss(self, data, training: bool):
        x, y = data
        y_pred = self(x, training=training)
        return self.loss_layer(y, y_pred)

    @staticmethod
    def _replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    def _report(self, scaled: tf.Tensor) -> tf.Tensor:
        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            return scaled
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, scaled)

    # AutoGraph is off inside the steps: everything they run is TensorFlow ops without Python
    # control flow on tensors, and converting Keras' layer code on the first trace took about
    # 10 s of the digits demo's Trainer.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, training=True)
            scaled = loss / tf.cast(self._replicas(), loss.dtype)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": self._report(scaled)}

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        loss = self._loss(data, training=False)
        return {"loss": self._report(loss / tf.cast(self._replicas(), loss.dtype))}


def build_trainer(
    training: TrainingSettings, feature_dim: int, num_classes: int | None
) -> tuple[tf.keras.Model, EmbeddingTrainer]:
    """``(encoder, trainer)`` for ``training``: its encoder, its loss, compiled with Adam.

    The optimizer's slots are built too (``build_optimizer``). Call it inside the strategy's
    scope; the weights start from ``training.seed``.
    """
    encoder = build_encoder(
        feature_dim,
        list(training.hidden_units),
        training.embedding_dim,
        seed=training.seed,
        kind=training.encoder,
    )
    loss = registry.build(
        training.loss, training.full_loss_params(), num_classes, training.embedding_dim
    )
    trainer = EmbeddingTrainer(encoder, loss, num_classes, seed=training.seed)
    trainer.compile(optimizer=tf.keras.optimizers.Adam(training.learning_rate))
    trainer.build_optimizer()
    return encoder, trainer
