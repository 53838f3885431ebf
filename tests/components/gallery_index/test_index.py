"""The gallery index: exact below its size limit, IVF above it with a measured nprobe."""

import faiss
import numpy as np
import pytest

from tfx_metric_learning.components.gallery_index import index


def clustered(rows, dim=16, centres=50, seed=0):
    """Rows around the same ``centres`` (fixed), their draws by ``seed``."""
    c = np.random.default_rng(0).normal(size=(centres, dim))
    rng = np.random.default_rng(seed + 1)
    return (c[rng.integers(centres, size=rows)] + 0.3 * rng.normal(size=(rows, dim))).astype(
        np.float32
    )


def test_a_small_gallery_is_exact_and_finds_what_brute_force_finds():
    x = clustered(500)
    built, info = index.build(x, exact_max_rows=1000, recall_target=0.99)
    assert (info.kind, info.rows, info.dim, info.recall_at_k) == (index.FLAT, 500, 16, 1.0)
    sims, ids = index.search(built, x[:20], 5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.argsort(-(unit[:20] @ unit.T), axis=1, kind="stable")[:, :5]
    assert (ids[:, 0] == np.arange(20)).all()  # each row finds itself first
    assert index.recall_at_k(ids, expected) == 1.0
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)


def test_a_large_gallery_gets_ivf_with_the_smallest_nprobe_reaching_the_target():
    x = clustered(20000)
    built, info = index.build(x, exact_max_rows=1000, recall_target=0.95, queries=300, seed=1)
    assert info.kind == index.IVF_FLAT and info.nlist == index.nlist_for(20000) == 512
    assert info.recall_at_k >= 0.95 and info.recall_queries == 300
    assert built.nprobe == info.nprobe
    # the measurement holds for queries the index never saw, and one probe count lower
    # finds less (the measured rows are held out while it is measured)
    fresh = index.normalise(clustered(500, seed=2))
    _, exact = faiss.knn(fresh, index.normalise(x), 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, chosen = built.search(fresh, 10)
    assert index.recall_at_k(chosen, exact) >= 0.95 - 0.03
    if info.nprobe > 1:
        built.nprobe = info.nprobe // 2
        _, lower = built.search(fresh, 10)
        assert index.recall_at_k(lower, exact) < index.recall_at_k(chosen, exact)
    assert built.ntotal == 20000
    # an impossible target scans every list: exact
    _, strict = index.build(x, exact_max_rows=1000, recall_target=1.01, queries=50)
    assert (strict.nprobe, strict.recall_at_k) == (strict.nlist, 1.0)


def test_written_and_read_back_it_answers_the_same(tmp_path):
    x = clustered(3000)
    built, info = index.build(x, exact_max_rows=100, recall_target=0.9, queries=100)
    path = str(tmp_path / "gallery.faiss")
    index.write(built, path)
    again = index.read(path)
    assert faiss.extract_index_ivf(again).nprobe == info.nprobe
    assert (index.search(again, x[:50], 10)[1] == index.search(built, x[:50], 10)[1]).all()


def test_an_empty_gallery_is_refused():
    with pytest.raises(ValueError, match="the gallery is empty"):
        index.build(np.zeros((0, 4), np.float32), exact_max_rows=10, recall_target=0.99)


def test_recall_counts_the_exact_neighbours_found():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[1, 2, 9, 4], [8, 7, 6, 5]])
    assert index.recall_at_k(found, exact) == pytest.approx((3 / 4 + 1) / 2)
