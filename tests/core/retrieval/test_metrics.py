import itertools

import numpy as np
import pytest

from tfx_metric_learning.core.retrieval import metrics

# unit vectors whose dot products are exact in float32, so ties are real ties in any
# summation order: +-e_i and (+-1/2, +-1/2, +-1/2, +-1/2)
CODEBOOK = np.array(
    [s * e for e in np.eye(4) for s in (1, -1)]
    + [list(v) for v in itertools.product((0.5, -0.5), repeat=4)],
    dtype=np.float32,
)


def tied_vectors(rng, n):
    return CODEBOOK[rng.integers(len(CODEBOOK), size=n)]


def brute_force(emb, labels, ks, gallery=None, gallery_labels=None):
    """Reference over explicit loops: full ranking of the gallery, ties by index."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    loo = gallery is None
    g = x if loo else gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    g_labels = labels if loo else gallery_labels
    n = len(labels)
    p1, rp, mapr, recall = [], [], [], {k: [] for k in ks}
    for q in range(n):
        others = [j for j in range(len(g_labels)) if not (loo and j == q)]
        ranked = sorted(others, key=lambda j: (-float(np.float32(x[q]) @ np.float32(g[j])), j))
        match = [g_labels[j] == labels[q] for j in ranked]
        r = sum(g_labels[j] == labels[q] for j in others)
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
    # a small codebook of exact unit vectors makes ties common; classes of size 1 and 2 too
    emb = tied_vectors(rng, n)
    labels = np.concatenate([[100], [200, 200], rng.integers(0, 5, size=n - 3)])
    ks = [1, 3, 5, 10]
    got = metrics.retrieval_metrics(emb, labels, ks, block=7)
    expected, lone = brute_force(emb, labels, ks)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["queries_without_positive"] == lone >= 1


def test_block_sizes_give_identical_results():
    rng = np.random.default_rng(3)
    emb = tied_vectors(rng, 101)  # many exact ties
    labels = rng.integers(0, 6, size=101)
    results = [
        metrics.retrieval_metrics(emb, labels, block=b, gallery_block=g, details=True)
        for b, g in ((1, 7), (10, 1000), (64, 13), (1000, 50))
    ]
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize("seed", range(3))
def test_separate_query_and_gallery_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    queries, gallery = tied_vectors(rng, 25), tied_vectors(rng, 40)
    q_labels = np.concatenate([["unseen"], rng.integers(0, 4, size=24).astype(str)])
    g_labels = rng.integers(0, 4, size=40).astype(str)
    got = metrics.retrieval_metrics(
        queries,
        q_labels,
        [1, 5],
        block=4,
        gallery_embeddings=gallery,
        gallery_labels=g_labels,
        gallery_block=9,
    )
    expected, lone = brute_force(queries, q_labels, [1, 5], gallery, g_labels)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["queries_without_positive"] == lone == 1


def test_details_hold_curve_and_per_class_scores():
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(60, 5)).astype(np.float32)
    labels = np.concatenate([["solo"], rng.integers(0, 3, size=59).astype(str)])
    got = metrics.retrieval_metrics(emb, labels, details=True)
    assert got["classes_without_positive"] == ["solo"]
    assert "solo" not in got["per_class"]
    assert len(got["recall_curve"]) == 20 and got["recall_curve"][0] == got["recall_at_1"]
    assert np.all(np.diff(got["recall_curve"]) >= 0)
    weighted = sum(c["queries"] * c["map_at_r"] for c in got["per_class"].values())
    assert weighted / got["num_queries"] == pytest.approx(got["map_at_r"], abs=1e-9)


def test_perfectly_separated_classes_score_one():
    emb = np.array([[1, 0], [0.99, 0.01], [0, 1], [0.01, 0.99]], dtype=np.float32)
    got = metrics.retrieval_metrics(emb, ["a", "a", "b", "b"])
    assert got["map_at_r"] == got["precision_at_1"] == got["recall_at_1"] == 1.0


def test_fewer_than_two_classes_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 classes"):
        metrics.retrieval_metrics(np.ones((3, 2)), ["a", "a", "a"])


def test_sampled_queries_search_the_whole_gallery_leave_one_out():
    rng = np.random.default_rng(6)
    emb = tied_vectors(rng, 80)
    labels = rng.integers(0, 5, size=80)
    sample = np.sort(rng.choice(80, 30, replace=False))
    tiles = lambda: (emb[s : s + 17] for s in range(0, 80, 17))  # noqa: E731
    got = metrics.retrieval_metrics(
        emb[sample],
        labels[sample],
        [1, 5],
        gallery_embeddings=tiles,
        gallery_labels=labels,
        query_ids=sample,
        population=80,
    )
    full = metrics.retrieval_metrics(emb, labels, [1, 5], details=True)
    # the same per-query terms as the full leave-one-out run, averaged over the sample
    expected, _ = brute_force(emb, labels, [1, 5])
    per_query = []
    for q in sample:
        one = metrics.retrieval_metrics(
            emb[[q]],
            labels[[q]],
            [1],
            gallery_embeddings=emb,
            gallery_labels=labels,
            query_ids=np.array([q]),
        )
        per_query.append(one["map_at_r"])
    assert got["map_at_r"] == pytest.approx(np.mean(per_query), abs=1e-12)
    assert got["num_queries"] == 30 and full["num_queries"] == 80
    assert expected["map_at_r"] == pytest.approx(full["map_at_r"], abs=1e-6)
    assert set(got["sampling_error"]) == {
        "precision_at_1",
        "recall_at_1",
        "recall_at_5",
        "r_precision",
        "map_at_r",
    }
    assert all(e > 0 for e in got["sampling_error"].values())


def test_sampling_error_follows_the_formula_and_vanishes_for_the_whole_split():
    terms = np.array([0.0, 1.0, 1.0, 0.5])
    expected = 1.959963984540054 * np.std(terms, ddof=1) / 2 * np.sqrt(1 - 4 / 10)
    assert metrics.sampling_error(terms, 4, 10) == pytest.approx(expected)
    assert metrics.sampling_error(terms, 10, 10) == 0.0
    with pytest.raises(ValueError, match="sample of 11"):
        metrics.sampling_error(terms, 11, 10)


def test_the_sampling_error_covers_the_full_split_metric():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(20, 8))
    labels = rng.integers(0, 20, size=3000)
    emb = (centres[labels] + rng.normal(scale=1.2, size=(3000, 8))).astype(np.float32)
    full = metrics.retrieval_metrics(emb, labels)
    covered = 0
    for seed in range(20):
        sample = np.random.default_rng(seed).choice(3000, 300, replace=False)
        got = metrics.retrieval_metrics(
            emb[sample],
            labels[sample],
            gallery_embeddings=emb,
            gallery_labels=labels,
            query_ids=sample,
            population=3000,
        )
        err = got["sampling_error"]["map_at_r"]
        assert 0.005 < err < 0.1
        covered += abs(got["map_at_r"] - full["map_at_r"]) <= err
    assert covered >= 16  # a 95% interval: 19 of 20 expected


def _first_hits(emb, labels, gallery=None, gallery_labels=None):
    """0-based rank of each query's first same-label neighbour (brute force; ties by index),
    None for a query without one."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    loo = gallery is None
    g = x if loo else gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    g_labels = labels if loo else gallery_labels
    out = []
    for q in range(len(labels)):
        others = [j for j in range(len(g_labels)) if not (loo and j == q)]
        ranked = sorted(others, key=lambda j: (-float(np.float32(x[q]) @ np.float32(g[j])), j))
        match = [g_labels[j] == labels[q] for j in ranked]
        out.append(match.index(True) if any(match) else None)
    return out


def test_defaults_report_recall_at_1_5_10_and_no_details():
    rng = np.random.default_rng(8)
    got = metrics.retrieval_metrics(rng.normal(size=(30, 4)), rng.integers(0, 3, size=30))
    assert {k for k in got if k.startswith("recall_at_")} == {
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
    }
    assert "recall_curve" not in got and "per_class" not in got
    assert type(got["map_at_r"]) is float and type(got["recall_at_5"]) is float  # not numpy
    assert type(got["num_queries"]) is int


@pytest.mark.parametrize("extra", ["labels", "embeddings"])
def test_a_length_mismatch_either_way_is_refused(extra):
    emb, labels = np.eye(4), ["a", "a", "b", "b"]
    longer = {"labels": (emb, [*labels, "b"]), "embeddings": (np.eye(5)[:, :4], labels)}
    with pytest.raises(ValueError, match="query embeddings but"):
        metrics.retrieval_metrics(*longer[extra])
    g_emb, g_labels = (np.eye(5)[:, :4], labels) if extra == "embeddings" else (emb, [*labels, "b"])
    with pytest.raises(ValueError, match="gallery embeddings but"):
        metrics.retrieval_metrics(emb, labels, gallery_embeddings=g_emb, gallery_labels=g_labels)
    ids = np.arange(5) if extra == "labels" else np.arange(3)
    with pytest.raises(ValueError, match=r"queries but \d+ query ids"):  # this layer's words
        metrics.retrieval_metrics(
            emb, labels, gallery_embeddings=emb, gallery_labels=labels, query_ids=ids
        )


def test_a_query_label_the_gallery_lacks_counts_as_without_positive():
    # "b" sorts between the gallery's classes: it must not be taken for its neighbour "c"
    gallery = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    g_labels = ["a", "a", "c", "c"]
    queries = np.array([[0, 1], [1, 0], [0.05, 1]], dtype=np.float32)
    got = metrics.retrieval_metrics(
        queries, ["b", "a", "z"], [1], gallery_embeddings=gallery, gallery_labels=g_labels,
        details=True,
    )  # fmt: skip
    assert got["num_queries"] == 1 and got["queries_without_positive"] == 2
    assert got["classes_without_positive"] == ["b", "z"]
    assert got["precision_at_1"] == 1.0
    # leave-one-out on a sample whose label the gallery does not hold
    sample = metrics.retrieval_metrics(
        gallery[:2], ["z", "a"], [1], gallery_embeddings=gallery, gallery_labels=g_labels,
        query_ids=np.array([0, 1]), details=True,
    )  # fmt: skip
    assert sample["classes_without_positive"] == ["z"] and sample["num_queries"] == 1


def test_recall_at_k_beyond_the_gallery_counts_every_positive():
    # the query's positive is its farthest neighbour: found at k >= the gallery size only
    emb = np.array([[1, 0], [0.9, 0.1], [-1, 0.05]], dtype=np.float32)
    loo = metrics.retrieval_metrics(emb, ["a", "b", "a"], [1, 5])
    assert loo["precision_at_1"] == 0.0 and loo["recall_at_5"] == 1.0
    gallery = metrics.retrieval_metrics(
        emb[:1], ["a"], [1, 5], gallery_embeddings=emb[1:], gallery_labels=["b", "a"]
    )
    assert gallery["precision_at_1"] == 0.0 and gallery["recall_at_5"] == 1.0


def test_details_give_a_20_point_curve_even_with_small_classes():
    labels = np.repeat(np.arange(15), 3)  # R = 2 for every query, far below 20
    emb = np.random.default_rng(9).normal(size=(45, 6))
    got = metrics.retrieval_metrics(emb, labels, [1], details=True)
    assert len(got["recall_curve"]) == 20 and got["recall_curve"][0] == got["recall_at_1"]


def test_a_block_without_any_valid_query_does_not_end_the_search():
    emb = np.array([[1, 0], [0, 1], [0.1, 1], [1, 0.1], [0.9, 0.2]], dtype=np.float32)
    labels = ["solo", "b", "b", "a", "a"]  # the first query, alone in its class, fills block 1
    assert metrics.retrieval_metrics(emb, labels, block=1) == metrics.retrieval_metrics(emb, labels)
    assert metrics.retrieval_metrics(emb, labels, block=1)["num_queries"] == 4


def test_no_query_with_a_positive_is_a_clear_error():
    with pytest.raises(ValueError, match="no query has another example of its class"):
        metrics.retrieval_metrics(np.eye(3), ["a", "b", "c"])


def test_queries_without_positive_is_a_count():
    emb = np.random.default_rng(10).normal(size=(6, 3))
    got = metrics.retrieval_metrics(emb, ["a", "a", "a", "x", "y", "z"], [1])
    assert got["num_queries"] == 3 and got["queries_without_positive"] == 3


def test_per_class_scores_average_to_the_whole_and_keep_single_query_classes():
    rng = np.random.default_rng(11)
    emb = rng.normal(size=(40, 5)).astype(np.float32)
    labels = rng.integers(0, 4, size=40).astype(str)
    got = metrics.retrieval_metrics(emb, labels, details=True)
    for name in ("r_precision", "map_at_r"):
        weighted = sum(c["queries"] * c[name] for c in got["per_class"].values())
        assert weighted / got["num_queries"] == pytest.approx(got[name], abs=1e-9)
    one = metrics.retrieval_metrics(
        emb[:1], labels[:1], [1], gallery_embeddings=emb, gallery_labels=labels, details=True
    )
    assert list(one["per_class"]) == [labels[0]] and one["per_class"][labels[0]]["queries"] == 1


def test_sampled_recall_at_k_errors_are_those_of_its_own_terms():
    rng = np.random.default_rng(12)
    emb = tied_vectors(rng, 60)
    labels = rng.integers(0, 4, size=60)
    got = metrics.retrieval_metrics(emb, labels, [1, 3], population=200)
    hits = [h for h in _first_hits(emb, labels) if h is not None]
    for k in (1, 3):
        terms = np.array([h < k for h in hits], dtype=float)
        assert 0 < terms.mean() < 1  # both outcomes occur: the error is not 0
        expected = metrics.sampling_error(terms, 60, 200)
        assert got["sampling_error"][f"recall_at_{k}"] == pytest.approx(expected, abs=1e-12)
    assert got["sampling_error"]["recall_at_1"] == got["sampling_error"]["precision_at_1"]


def test_sampling_error_of_one_or_two_terms():
    assert metrics.sampling_error(np.array([1.0]), 1, 10) == 0.0  # one term: no spread known
    two = metrics.sampling_error(np.array([0.0, 1.0]), 2, 10)
    assert two == pytest.approx(
        1.959963984540054 * np.std([0, 1], ddof=1) / np.sqrt(2) * np.sqrt(0.8)
    )


def test_the_recall_curve_stops_at_the_gallery_size():
    emb = np.random.default_rng(13).normal(size=(5, 3))
    loo = metrics.retrieval_metrics(emb, ["a", "a", "b", "b", "b"], [1], details=True)
    assert len(loo["recall_curve"]) == 4 and loo["recall_curve"][-1] == 1.0  # 4 others each
    gallery = metrics.retrieval_metrics(
        emb[:2], ["a", "b"], [1], gallery_embeddings=emb[2:], gallery_labels=["a", "b", "b"],
        details=True,
    )  # fmt: skip
    assert len(gallery["recall_curve"]) == 3 and gallery["recall_curve"][-1] == 1.0


@pytest.mark.parametrize("gallery", [False, True])
def test_nearest_gives_each_querys_first_neighbour_and_whether_it_matches(gallery):
    rng = np.random.default_rng(11)
    emb = tied_vectors(rng, 90)  # ties across labels: the first neighbour is the lower index
    labels = rng.integers(0, 4, size=90)
    kwargs = {}
    g, g_labels = emb, labels
    if gallery:
        g, g_labels = tied_vectors(rng, 70), rng.integers(0, 4, size=70)
        kwargs = {"gallery_embeddings": g, "gallery_labels": g_labels}
    got = metrics.retrieval_metrics(emb, labels, [1], nearest=True, **kwargs)["nearest"]
    sims = emb @ g.T  # unit vectors: exact in float32
    if not gallery:
        np.fill_diagonal(sims, -np.inf)
    first = np.argmax(sims, axis=1)  # the lowest index among the most similar
    np.testing.assert_array_equal(got["similarity"], sims[np.arange(90), first])
    np.testing.assert_array_equal(got["correct"], g_labels[first] == labels)
    assert got["correct"].any() and not got["correct"].all()
    assert "nearest" not in metrics.retrieval_metrics(emb, labels, [1])
