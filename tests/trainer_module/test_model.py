"""The encoders of ``model.build_encoder``."""

import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.core.retrieval.search import normalise
from tfx_metric_learning.trainer_module import model as model_lib
from tfx_metric_learning.trainer_module.losses import registry


def test_residual_encoder_starts_as_the_normalised_input():
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    encoder = model_lib.build_encoder(8, [16, 16], 8, seed=1, kind="residual")
    np.testing.assert_allclose(encoder(x).numpy(), normalise(x), atol=1e-6)


def test_residual_encoder_to_a_wider_embedding_preserves_cosine_similarities():
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    encoder = model_lib.build_encoder(8, [16], 12, seed=1, kind="residual")
    emb = encoder(x).numpy()
    assert emb.shape == (50, 12)
    sims, expected = emb @ emb.T, normalise(x) @ normalise(x).T
    np.testing.assert_allclose(sims, expected, atol=1e-5)  # a semi-orthogonal skip: isometry


def test_mlp_encoder_is_not_the_input_and_unknown_kinds_are_refused():
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    emb = model_lib.build_encoder(8, [16], 8, seed=1)(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb, normalise(x), atol=1e-2)
    with pytest.raises(ValueError, match="unknown encoder .cnn.; valid: mlp, residual, conv"):
        model_lib.build_encoder(8, [16], 8, kind="cnn")


@pytest.mark.parametrize("name", ["triplet_semihard", "proxy_anchor", "arcface", "supcon"])
@pytest.mark.parametrize("prebuilt", [True, False])
def test_fit_traces_the_train_step_once_when_the_optimizer_is_built_first(name, prebuilt):
    # class heads and loss weights exist from construction; without build_optimizer the
    # optimizer's slots are created in fit's first trace and tf.function traces it again
    encoder = model_lib.build_encoder(8, [16], 4, seed=0)
    loss = registry.build(name, registry.validate(name, {}), 5, 4)
    trainer = model_lib.EmbeddingTrainer(encoder, loss, 5, seed=0)
    trainer.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    if prebuilt:
        trainer.build_optimizer()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = np.arange(64, dtype=np.int64) % 5
    history = trainer.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert trainer.train_tf_function.experimental_get_tracing_count() == (1 if prebuilt else 2)


def _pixel_names(side):
    return sorted(f"px_{i}" for i in range(side * side))  # the feature vector's order


def test_auto_takes_conv_only_for_images_of_the_minimum_side():
    kind, raster = model_lib.encoder_kind("auto", _pixel_names(16))
    assert kind == "conv" and (raster.height, raster.width) == (16, 16)
    assert model_lib.encoder_kind("auto", _pixel_names(8)) == ("mlp", None)  # 8 x 8: narrow
    assert model_lib.encoder_kind("auto", [f"f{i}" for i in range(300)]) == ("mlp", None)
    assert model_lib.encoder_kind("auto", None) == ("mlp", None)
    assert model_lib.encoder_kind("conv", _pixel_names(8))[0] == "conv"  # asked for: taken
    with pytest.raises(ValueError, match="encoder 'conv' needs features that are the pixels"):
        model_lib.encoder_kind("conv", ["height", "weight", "age", "size"])


def test_conv_encoder_sees_the_pixels_in_raster_order():
    side = 16
    names = _pixel_names(side)
    kind, raster = model_lib.encoder_kind("conv", names)
    encoder = model_lib.build_encoder(len(names), [], 8, seed=0, kind=kind, raster=raster)
    image = np.random.default_rng(0).random((3, side, side)).astype(np.float32)
    vector = np.stack([image[:, int(n[3:]) // side, int(n[3:]) % side] for n in names], axis=1)
    ordered = model_lib.RasterOrder(raster.order)(vector).numpy()
    np.testing.assert_array_equal(ordered, image.reshape(3, -1))
    emb = encoder(vector).numpy()
    assert emb.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # the same image with its feature columns in another order gives another embedding
    assert not np.allclose(encoder(image.reshape(3, -1)).numpy(), emb, atol=1e-3)
