import numpy as np
import pytest
import tensorflow as tf

from tests.trainer_module.losses import reference as ref
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.losses.triplet import TripletLoss, TripletSemiHardLoss


def _dist(name, x, y):
    return ref.dist(name, x, y)


def semihard_reference(labels, emb, margin, name, fallback="hardest"):
    return ref.triplet_semihard(labels, emb, margin, name, fallback)


@pytest.mark.parametrize("name", ["l2", "squared_l2", "cosine"])
@pytest.mark.parametrize("fallback", ["hardest", "easiest"])
def test_semihard_matches_explicit_loops(name, fallback):
    rng = np.random.default_rng(1)
    for _ in range(3):
        labels = rng.integers(0, 3, size=10)
        emb = rng.normal(size=(10, 4)).astype(np.float32)
        loss = TripletSemiHardLoss(margin=0.5, distance=name, fallback=fallback)
        got = float(loss(tf.constant(labels), tf.constant(emb)))
        assert got == pytest.approx(semihard_reference(labels, emb, 0.5, name, fallback), abs=1e-5)


def test_semihard_batch_without_valid_triplet_is_zero_not_nan():
    loss = TripletSemiHardLoss()
    same = float(loss(tf.constant([1, 1, 1]), tf.random.normal([3, 4])))
    singletons = float(loss(tf.constant([0, 1, 2]), tf.random.normal([3, 4])))
    assert same == 0.0 and singletons == 0.0


@pytest.mark.parametrize("name", ["l2", "squared_l2", "cosine"])
def test_semihard_gradients_finite_for_identical_embeddings(name):
    emb = tf.Variable(tf.ones([6, 4]))
    labels = tf.constant([0, 0, 1, 1, 2, 2])
    with tf.GradientTape() as tape:
        value = TripletSemiHardLoss(distance=name)(labels, emb)
    assert np.all(np.isfinite(tape.gradient(value, emb).numpy()))


@pytest.mark.parametrize("name", ["l2", "squared_l2", "cosine"])
def test_offline_triplet_matches_explicit_loops(name):
    rng = np.random.default_rng(2)
    a, p, n = (rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3))
    expected = np.mean(
        [max(0.0, _dist(name, a[i], p[i]) - _dist(name, a[i], n[i]) + 0.3) for i in range(6)]
    )
    got = float(TripletLoss(margin=0.3, distance=name)(tf.zeros([6]), tf.stack([a, p, n], axis=1)))
    assert got == pytest.approx(expected, abs=1e-5)


def test_registry_refuses_unknown_names_and_bad_parameters():
    with pytest.raises(ValueError, match="valid losses: .*triplet_semihard"):
        registry.get_spec("no_such_loss")
    with pytest.raises(ValueError, match="margin.*>= 0"):
        registry.validate("triplet", {"margin": -1})
    with pytest.raises(ValueError, match="no parameter 'temperature'; valid: distance, margin"):
        registry.validate("triplet", {"temperature": 0.1})
    with pytest.raises(ValueError, match="distance.*cosine, l2, squared_l2"):
        registry.validate("triplet_semihard", {"distance": "manhattan"})
    with pytest.raises(ValueError, match="class count"):
        registry.build("sparse_categorical_crossentropy", {}, num_classes=None)
