import numpy as np
import pytest

from components.retrieval_evaluator import metrics


def brute_force(emb, labels, ks):
    """Reference over explicit loops: full ranking of the other items, ties by index."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    n = len(labels)
    p1, rp, mapr, recall = [], [], [], {k: [] for k in ks}
    for q in range(n):
        others = [j for j in range(n) if j != q]
        ranked = sorted(others, key=lambda j: (-float(x[q] @ x[j]), j))
        match = [labels[j] == labels[q] for j in ranked]
        r = sum(labels[j] == labels[q] for j in others)
        if r == 0:
            continue
        p1.append(float(match[0]))
        for k in ks:
            recall[k].append(float(any(match[:k])))
        rp.append(sum(match[:r]) / r)
        ap = 0.0
        hits = 0
        for i in range(r):
            if match[i]:
                hits += 1
                ap += hits / (i + 1)
        mapr.append(ap / r)
    out = {"precision_at_1": np.mean(p1), "r_precision": np.mean(rp), "map_at_r": np.mean(mapr)}
    out.update({f"recall_at_{k}": np.mean(v) for k, v in recall.items()})
    return out, n - len(p1)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_brute_force_with_ties_and_tiny_classes(seed):
    rng = np.random.default_rng(seed)
    n = 40
    # integer coordinates make exact ties common; classes of size 1 and 2 are included
    emb = rng.integers(-2, 3, size=(n, 3)).astype(np.float32)
    emb[np.all(emb == 0, axis=1)] = 1.0
    labels = np.concatenate([[100], [200, 200], rng.integers(0, 5, size=n - 3)])
    ks = [1, 3, 5, 10]
    got = metrics.retrieval_metrics(emb, labels, ks, block=7)
    expected, lone = brute_force(emb, labels, ks)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["queries_without_positive"] == lone >= 1


def test_block_sizes_give_identical_results():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(101, 8)).astype(np.float32)
    labels = rng.integers(0, 6, size=101)
    results = [metrics.retrieval_metrics(emb, labels, block=b) for b in (1, 10, 64, 1000)]
    assert all(r == results[0] for r in results)


def test_perfectly_separated_classes_score_one():
    emb = np.array([[1, 0], [0.99, 0.01], [0, 1], [0.01, 0.99]], dtype=np.float32)
    got = metrics.retrieval_metrics(emb, ["a", "a", "b", "b"])
    assert got["map_at_r"] == got["precision_at_1"] == got["recall_at_1"] == 1.0


def test_fewer_than_two_classes_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 classes"):
        metrics.retrieval_metrics(np.ones((3, 2)), ["a", "a", "a"])
