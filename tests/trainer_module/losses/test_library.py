"""Every registered loss against an independent NumPy reference, and finite gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer_module.losses import reference as ref
from tfx_metric_learning.trainer_module.losses import registry

ATOL = 1e-5
C, D = 4, 5


def _embeddings(rng, n):
    x = rng.normal(size=(n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _labels(rng, n):
    labels = rng.integers(0, C, size=n)
    labels[:2] = [0, 1]  # at least two classes
    return labels


def _build(name, **params):
    return registry.build(name, params, num_classes=C, embedding_dim=D)


CLASSIFICATION = [
    n for n in registry.names() if registry.get_spec(n).input_mode == "classification"
]
PAIRS = [n for n in registry.names() if registry.get_spec(n).input_mode == "pairs"]


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("seed", [0, 1])
def test_classification_losses_match_reference(name, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=7)
    logits = rng.normal(size=(7, C)).astype(np.float32) * 3
    params = {"label_smoothing": 0.1} if "label_smoothing" in registry.get_spec(name).params else {}
    got = float(_build(name, **params)(tf.constant(labels), tf.constant(logits)))
    assert got == pytest.approx(ref.classification(name, labels, logits, **params), abs=ATOL)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("similar_label", [1, 0])
def test_pair_losses_match_reference(name, similar_label):
    rng = np.random.default_rng(3)
    left, right = _embeddings(rng, 8), _embeddings(rng, 8)
    targets = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    got = float(
        _build(name, similar_label=similar_label)(
            tf.constant(targets), tf.constant(np.stack([left, right], axis=1))
        )
    )
    expected = ref.pair(name, targets, left, right, similar_label=similar_label)
    assert got == pytest.approx(expected, abs=ATOL)


@pytest.mark.parametrize("distance", ["l2", "squared_l2", "cosine"])
def test_contrastive_distances_and_factor(distance):
    rng = np.random.default_rng(4)
    left, right = rng.normal(size=(6, D)), rng.normal(size=(6, D))
    targets = np.array([1, 0, 1, 0, 0, 1])
    got = float(
        _build("contrastive", distance=distance, factor=1.0, margin=2.0)(
            tf.constant(targets), tf.constant(np.stack([left, right], 1), tf.float32)
        )
    )
    expected = ref.pair(
        "contrastive", targets, left, right, distance=distance, factor=1.0, margin=2.0
    )
    assert got == pytest.approx(expected, abs=ATOL)


def test_contrastive_seed_example():
    left = np.array([[0.5, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.5]])
    right = np.array([[0.6, 0.7, 0.8, 0.9], [0.9, 0.8, 0.7, 0.6]])
    labels = np.array([1, 0])  # 1 = similar
    d = np.linalg.norm(left - right, axis=1)
    direct = np.mean(labels * d**2 + (1 - labels) * np.maximum(0, 1.0 - d) ** 2)
    got = float(
        _build("contrastive", factor=1.0, margin=1.0)(
            tf.constant(labels), tf.constant(np.stack([left, right], 1), tf.float32)
        )
    )
    assert got == pytest.approx(direct, abs=ATOL)
    assert got == pytest.approx((0.04 + (1 - np.sqrt(0.84)) ** 2) / 2, abs=ATOL)
    # Hadsell's own convention (0 = similar) and 0.5 factors give half of the flipped value
    hadsell = float(
        _build("contrastive", similar_label=0)(
            tf.constant(1 - labels), tf.constant(np.stack([left, right], 1), tf.float32)
        )
    )
    assert hadsell == pytest.approx(direct / 2, abs=ATOL)


def test_triplet_seed_example():
    anchors = np.array([[0.5, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.5]])
    positives = np.array([[0.6, 0.7, 0.8, 0.9], [0.2, 0.35, 0.4, 0.55]])
    negatives = np.array([[0.9, 0.8, 0.7, 0.6], [0.6, 0.7, 0.8, 0.9]])
    d_ap = np.sum((anchors - positives) ** 2, 1)
    d_an = np.sum((anchors - negatives) ** 2, 1)
    direct = np.mean(np.maximum(0, d_ap - d_an + 1.0))
    got = float(
        _build("triplet", margin=1.0)(
            tf.zeros([2]), tf.constant(np.stack([anchors, positives, negatives], 1), tf.float32)
        )
    )
    assert got == pytest.approx(direct, abs=ATOL)


@pytest.mark.parametrize("distance", ["l2", "squared_l2", "cosine"])
def test_offline_triplet_family_matches_reference(distance):
    rng = np.random.default_rng(5)
    a, p, n = (rng.normal(size=(6, D)) for _ in range(3))
    negs = rng.normal(size=(6, 3, D))
    stacked = tf.constant(np.stack([a, p, n], 1), tf.float32)
    assert float(
        _build("triplet", distance=distance, margin=0.3)(tf.zeros([6]), stacked)
    ) == pytest.approx(ref.triplet(a, p, n, 0.3, distance), abs=ATOL)
    assert float(
        _build("pairwise_ranking", distance=distance, temperature=0.5)(tf.zeros([6]), stacked)
    ) == pytest.approx(ref.pairwise_ranking(a, p, n, distance, 0.5), abs=ATOL)
    k_stacked = tf.constant(np.concatenate([a[:, None], p[:, None], negs], 1), tf.float32)
    assert float(
        _build("triplet_k_negatives", distance=distance, margin=0.3, num_negatives=3)(
            tf.zeros([6]), k_stacked
        )
    ) == pytest.approx(ref.triplet_k_negatives(a, p, negs, 0.3, distance), abs=ATOL)


def test_k_negatives_refuses_an_input_with_another_k():
    stacked = tf.zeros([6, 2 + 4, D])
    with pytest.raises(ValueError, match="input has 4 negatives per anchor, num_negatives is 3"):
        _build("triplet_k_negatives", num_negatives=3)(tf.zeros([6]), stacked)


ONLINE = {
    "triplet_semihard": (ref.triplet_semihard, {"margin": 0.5, "distance": "squared_l2"}),
    "triplet_hard": (ref.triplet_hard, {"margin": 0.5}),
    "triplet_all": (ref.triplet_all, {"margin": 0.5}),
    "npairs": (ref.npairs, {}),
    "infonce": (ref.npairs, {"temperature": 0.1}),
    "supcon": (ref.supcon, {}),
    "multi_similarity": (ref.multi_similarity, {}),
    "circle": (ref.circle, {"gamma": 20.0}),
    "lifted_structure": (ref.lifted_structure, {}),
    "soft_nn": (ref.soft_nn, {"temperature": 0.5}),
}


@pytest.mark.parametrize("name", sorted(ONLINE))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_online_losses_match_reference(name, seed):
    rng = np.random.default_rng(seed)
    labels, emb = _labels(rng, 12), _embeddings(rng, 12)
    fn, params = ONLINE[name]
    got = float(_build(name, **params)(tf.constant(labels), tf.constant(emb)))
    expected = fn(labels, emb, **params) if name != "infonce" else fn(labels, emb, 0.1)
    assert got == pytest.approx(expected, abs=ATOL, rel=1e-5)


def test_triplet_hard_soft_margin():
    rng = np.random.default_rng(9)
    labels, emb = _labels(rng, 10), _embeddings(rng, 10)
    expected = ref.triplet_hard(labels, emb, soft=True)
    for margin in (0.0, 1.0, 3.0):  # Hermans' soft margin has none: the margin is not used
        loss = _build("triplet_hard", soft=True, margin=margin)
        assert float(loss(tf.constant(labels), tf.constant(emb))) == pytest.approx(
            expected, abs=ATOL
        )
    hinge = float(_build("triplet_hard", margin=3.0)(tf.constant(labels), tf.constant(emb)))
    assert hinge == pytest.approx(ref.triplet_hard(labels, emb, margin=3.0), abs=ATOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_proxy_losses_match_reference(seed):
    rng = np.random.default_rng(seed)
    labels, emb = _labels(rng, 10), _embeddings(rng, 10)
    proxy = _build("proxy_anchor")
    got = float(proxy(tf.constant(labels), tf.constant(emb)))
    assert got == pytest.approx(
        ref.proxy_anchor(labels, emb, proxy.proxies.numpy()), abs=ATOL, rel=1e-5
    )
    arc = _build("arcface", scale=16.0)
    got = float(arc(tf.constant(labels), tf.constant(emb)))
    assert got == pytest.approx(
        ref.arcface(labels, emb, arc.centres.numpy(), scale=16.0), abs=ATOL, rel=1e-5
    )


def test_cross_batch_memory_mines_against_earlier_batches():
    rng = np.random.default_rng(7)
    loss = _build("triplet_semihard", memory_size=16, margin=0.5)
    b1_labels, b1 = _labels(rng, 8), _embeddings(rng, 8)
    b2_labels, b2 = _labels(rng, 8), _embeddings(rng, 8)
    first = float(loss(tf.constant(b1_labels), tf.constant(b1)))
    assert first == pytest.approx(ref.triplet_semihard(b1_labels, b1, 0.5), abs=ATOL)
    second = float(loss(tf.constant(b2_labels), tf.constant(b2)))
    refs = (np.concatenate([b2_labels, b1_labels]), np.concatenate([b2, b1]))
    assert second == pytest.approx(ref.triplet_semihard(b2_labels, b2, 0.5, refs=refs), abs=ATOL)
    assert int(loss.memory.filled.numpy()) == 16


# Finite values and gradients on degenerate batches, batch-order invariance and parameter
# checks of every loss: tests/testing/test_losses.py (the testing kit's check_loss).


@pytest.mark.parametrize("name", sorted(ONLINE) + ["proxy_anchor"])
def test_batch_without_valid_pairs_gives_zero_not_nan(name):
    loss = _build(name)
    value = float(
        loss(tf.constant([3, 3, 3]), tf.constant(_embeddings(np.random.default_rng(0), 3)))
    )
    assert np.isfinite(value)
    if name != "proxy_anchor":  # proxies still pull every class's negatives away
        assert value == 0.0


def test_bad_parameters_are_refused_listing_valid_choices():
    with pytest.raises(ValueError, match="valid losses: .*arcface"):
        registry.get_spec("nope")
    with pytest.raises(ValueError, match="temperature.*> 0"):
        registry.validate("infonce", {"temperature": 0})
    with pytest.raises(ValueError, match="margin.*>= 0"):
        registry.validate("contrastive", {"margin": -0.1})
    with pytest.raises(ValueError, match="similar_label.*0, 1"):
        registry.validate("contrastive", {"similar_label": 2})
    with pytest.raises(ValueError, match="class count"):
        registry.build("arcface", {}, num_classes=None, embedding_dim=D)
    with pytest.raises(ValueError, match="no parameter 'memory_size'; valid: distance, margin"):
        registry.validate("lifted_structure", {"memory_size": 8})


def test_every_loss_documents_formula_and_defaults():
    for name in registry.names():
        spec = registry.get_spec(name)
        loss = registry.build(name, {}, num_classes=C, embedding_dim=D)
        doc = (type(loss).__doc__ or "") + (
            type(loss).__module__
            and __import__(type(loss).__module__, fromlist=["x"]).__doc__
            or ""
        )
        assert spec.summary and len(doc) > 80, name
