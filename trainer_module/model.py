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
from tfx_metric_learning.trainer_module.raster import Raster, conv_problem, raster_layout
from tfx_metric_learning.trainer_module.settings import (
    AUTO_CONV_MIN_SIDE,
    ENCODERS,
    TrainingSettings,
)

EMBEDDING_KEY = "embedding"


def encoder_kind(kind: str, feature_names: list[str] | None) -> tuple[str, Raster | None]:
    """``(encoder kind, raster)``: ``auto`` resolved, and the image a ``conv`` encoder reads.

    ``auto`` is ``conv`` when ``feature_names`` are the pixels of an image (``raster_layout``)
    at least ``AUTO_CONV_MIN_SIDE`` a side, else ``mlp``. ``conv`` on features that are not an
    image raises ``ValueError`` naming the rule.
    """
    raster = raster_layout(list(feature_names)) if feature_names else None
    if kind == "auto":
        if raster is not None and raster.side >= AUTO_CONV_MIN_SIDE:
            return "conv", raster
        return "mlp", None
    if kind == "conv" and raster is None:
        raise ValueError(conv_problem(list(feature_names or [])))
    return kind, raster if kind == "conv" else None


def build_encoder(
    input_dim: int,
    hidden_units: list[int],
    embedding_dim: int,
    seed: int = 0,
    kind: str = "mlp",
    raster: Raster | None = None,
    conv_filters: list[int] = (32, 64, 128),
    dropout: float = 0.0,
) -> tf.keras.Model:
    """The encoder ``[F] -> [D]``, L2-normalised; ``kind`` is one of ``ENCODERS`` but ``auto``.

    - ``mlp``: ``x -> hidden (ReLU) ... -> Dense(D) -> / ||.||``.
    - ``residual``: ``S x + Dense_0(hidden(x)) -> / ||.||``, where the skip ``S`` (``[F, D]``,
      trained) starts as the identity when ``D == F`` and as a semi-orthogonal map otherwise
      (an isometry when ``D > F``), and the last layer ``Dense_0`` starts at zero. Before
      training the embedding is the transformed input itself (``D == F``), so its cosine
      neighbours are the inputs', and training moves away from them only as far as the loss
      pays: what keeps the structure of the inputs for classes never trained on.
    - ``conv``: the features gathered into ``raster``'s image (``[H, W, 1]``), then per entry
      of ``conv_filters`` a 3 x 3 convolution (ReLU, same padding) and a 2 x 2 max pooling
      (while both sides are at least 2), flattened, ``-> Dense(D) -> / ||.||``. Pixels of a
      glyph or a photo share their meaning across positions, which an MLP must learn anew
      at every pixel: on 200 glyph classes never trained on (``benchmarks/unseen_classes.py``)
      the convolutions are what separates them.

    ``dropout`` > 0 drops that fraction of the last hidden (or flattened) layer's units in
    training, before the projection to ``D``.
    """
    if kind not in ENCODERS or kind == "auto":
        raise ValueError(f"unknown encoder {kind!r}; valid: {', '.join(ENCODERS[1:])}")
    inputs = tf.keras.Input(shape=(input_dim,), name=keys.FEATURES, dtype=tf.float32)
    x = inputs
    if kind == "conv":
        x = _conv_blocks(inputs, raster, conv_filters, seed)
    else:
        for i, units in enumerate(hidden_units):
            init = tf.keras.initializers.GlorotUniform(seed=seed + i)
            x = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init)(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
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


class RasterOrder(tf.keras.layers.Layer):
    """``[B, F]`` -> the features in raster order: ``x[:, order]`` (no weights)."""

    def __init__(self, order, **kwargs):
        super().__init__(**kwargs)
        self.order = [int(i) for i in order]

    def call(self, x):
        return tf.gather(x, tf.constant(self.order, dtype=tf.int32), axis=1)

    def get_config(self):
        return {**super().get_config(), "order": self.order}


def _conv_blocks(inputs, raster: Raster, filters: list[int], seed: int):
    """``[B, F]`` -> the flattened output of the conv blocks over ``raster``'s image."""
    if raster is None:
        raise ValueError("a conv encoder needs the image layout of its features (raster)")
    x = RasterOrder(raster.order, name="raster_order")(inputs)
    x = tf.keras.layers.Reshape((raster.height, raster.width, 1), name="image")(x)
    height, width = raster.height, raster.width
    for i, n in enumerate(filters):
        init = tf.keras.initializers.GlorotUniform(seed=seed + i)
        x = tf.keras.layers.Conv2D(
            n, 3, padding="same", activation="relu", kernel_initializer=init, name=f"conv_{i}"
        )(x)
        if height >= 2 and width >= 2:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool_{i}")(x)
            height, width = height // 2, width // 2
    return tf.keras.layers.Flatten(name="flatten")(x)


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
    training: TrainingSettings,
    feature_dim: int,
    num_classes: int | None,
    feature_names: list[str] | None = None,
) -> tuple[tf.keras.Model, EmbeddingTrainer]:
    """``(encoder, trainer)`` for ``training``: its encoder, its loss, compiled with Adam.

    ``feature_names`` (the raw features in feature-vector order) resolve ``encoder`` ``auto``
    and give ``conv`` its image (``encoder_kind``). The optimizer's slots are built too
    (``build_optimizer``). Call it inside the strategy's scope; the weights start from
    ``training.seed``.
    """
    kind, raster = encoder_kind(training.encoder, feature_names)
    encoder = build_encoder(
        feature_dim,
        list(training.hidden_units),
        training.embedding_dim,
        seed=training.seed,
        kind=kind,
        raster=raster,
        conv_filters=list(training.conv_filters),
        dropout=training.conv_dropout if kind == "conv" else 0.0,
    )
    loss = registry.build(
        training.loss, training.full_loss_params(), num_classes, training.embedding_dim
    )
    trainer = EmbeddingTrainer(encoder, loss, num_classes, seed=training.seed)
    trainer.compile(optimizer=tf.keras.optimizers.Adam(training.learning_rate))
    trainer.build_optimizer()
    return encoder, trainer
