import math

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from tfx_metric_learning.components.retrieval_evaluator import verification


def _brute_pairs(emb, labels):
    # the same float32 unit vectors the implementation uses, then float64 arithmetic
    x = verification.normalise(emb).astype(np.float64)
    same, diff = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = 1.0 - float(x[i] @ x[j])
            (same if labels[i] == labels[j] else diff).append(d)
    return np.array(same), np.array(diff)


def test_metrics_match_brute_force_with_ties():
    rng = np.random.default_rng(0)
    emb = rng.integers(-2, 3, size=(30, 3)).astype(np.float64)
    emb[np.all(emb == 0, axis=1)] = 1.0
    labels = np.concatenate([["a"], ["b", "b"], rng.integers(0, 3, size=27).astype(str)])
    same, diff = _brute_pairs(emb, labels)
    wins = sum((s < d) + 0.5 * (s == d) for s in same for d in diff)
    auc = wins / (len(same) * len(diff))
    best = None
    for t in sorted(set(same) | set(diff)):
        far = sum(d <= t for d in diff) / len(diff)
        frr = sum(s > t for s in same) / len(same)
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    pooled = math.sqrt((np.var(same) + np.var(diff)) / 2)
    got = verification.verification_metrics(emb, labels)
    assert got["roc_auc"] == pytest.approx(auc, abs=1e-6)
    assert got["eer"] == pytest.approx(best[1], abs=1e-6)
    assert got["separation"] == pytest.approx((np.mean(diff) - np.mean(same)) / pooled, abs=1e-6)
    assert got["same_class_pairs"] == len(same) and got["different_class_pairs"] == len(diff)
    assert 0.0 <= got["overlap"] <= 1.0


def test_perfect_separation_and_identical_distributions():
    same = np.array([0.1, 0.2, 0.15])
    diff = np.array([1.0, 1.2, 0.9])
    assert verification.roc_auc(same, diff) == 1.0
    assert verification.equal_error_rate(same, diff) == 0.0
    assert verification.overlap(same, diff) == 0.0
    assert verification.overlap(same, same) == pytest.approx(1.0)
    assert verification.roc_auc(same, same) == pytest.approx(0.5)


def test_sampled_pairs_are_valid_and_deterministic():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(300, 4))
    labels = rng.integers(0, 5, size=300)
    a = verification.pair_distances(emb, labels, max_pairs=1000, seed=3)
    b = verification.pair_distances(emb, labels, max_pairs=1000, seed=3)
    assert len(a[0]) == len(a[1]) == 1000
    np.testing.assert_array_equal(a[0], b[0])
    exact_same, exact_diff = _brute_pairs(emb, labels)
    # sampled distances are drawn from the exact populations
    assert set(np.round(a[0], 9)) <= set(np.round(exact_same, 9))
    assert set(np.round(a[1], 9)) <= set(np.round(exact_diff, 9))


def test_nmi_matches_sklearn_and_hand_values():
    rng = np.random.default_rng(2)
    y, c = rng.integers(0, 4, size=200), rng.integers(0, 5, size=200)
    assert verification.nmi(y, c) == pytest.approx(normalized_mutual_info_score(y, c), abs=1e-9)
    assert verification.nmi([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert verification.nmi([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0, abs=1e-12)


def test_cluster_nmi_finds_clear_clusters():
    rng = np.random.default_rng(3)
    centres = np.eye(4) * 5
    labels = np.repeat(np.arange(4), 25)
    emb = centres[labels] + rng.normal(scale=0.1, size=(100, 4))
    assert verification.cluster_nmi(emb, labels) == pytest.approx(1.0)
