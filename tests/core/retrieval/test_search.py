import faiss
import numpy as np
import pytest

from tests.core.retrieval.test_metrics import tied_vectors
from tfx_metric_learning.core.retrieval import search


def reference(queries, gallery, k, exclude=None):
    """Full sort of every row in float64: similarity descending, then gallery index."""
    q, g = search.normalise(queries), search.normalise(gallery)
    out = np.full((len(q), k), -1)
    for i in range(len(q)):
        others = [j for j in range(len(g)) if exclude is None or j != exclude[i]]
        ranked = sorted(others, key=lambda j: (-float(q[i] @ g[j]), j))[:k]
        out[i, : len(ranked)] = ranked
    return out


def as_tiles(gallery, size):
    return lambda: (gallery[s : s + size] for s in range(0, len(gallery), size))


def test_faiss_alone_leaves_ties_in_no_fixed_order():
    # the reason for the re-sort: on tied data faiss's order is not the lower-index rule
    rng = np.random.default_rng(0)
    q, g = search.normalise(tied_vectors(rng, 50)), search.normalise(tied_vectors(rng, 80))
    _, idx = faiss.knn(q, g, 5, metric=faiss.METRIC_INNER_PRODUCT)
    assert not np.array_equal(idx, reference(q, g, 5))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tile", [7, 33, 1000])
def test_ties_go_to_the_lower_index_for_any_tiling(seed, tile):
    rng = np.random.default_rng(seed)
    queries, gallery = tied_vectors(rng, 40), tied_vectors(rng, 90)
    for k in (1, 4, 12, 60):  # 60: several runs of ties in every row
        idx, sims = search.search(queries, as_tiles(gallery, tile), k, query_block=9)
        np.testing.assert_array_equal(idx, reference(queries, gallery, k))
        assert np.all(np.diff(sims, axis=1) <= 0)


@pytest.mark.parametrize("tile", [5, 1000])
def test_leave_one_out_never_returns_the_query_even_among_duplicates(tile):
    rng = np.random.default_rng(5)
    emb = tied_vectors(rng, 60)  # 24 distinct vectors: every query has duplicates
    ids = np.arange(60)
    for k in (1, 3, 10):
        idx = search.search(emb, emb, k, exclude=ids, gallery_block=tile)[0]
        assert not np.any(idx == ids[:, None])
        np.testing.assert_array_equal(idx, reference(emb, emb, k, ids))


def test_random_vectors_match_the_reference_with_and_without_leave_one_out():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(70, 16)).astype(np.float32)
    g = rng.normal(size=(300, 16)).astype(np.float32)
    np.testing.assert_array_equal(search.search(q, g, 8, gallery_block=64)[0], reference(q, g, 8))
    np.testing.assert_array_equal(
        search.search(q, q, 6, exclude=np.arange(70))[0], reference(q, q, 6, np.arange(70))
    )


def test_more_neighbours_than_gallery_items_are_padded():
    g = np.eye(3, 4, dtype=np.float32)
    idx, sims = search.search(np.eye(2, 4, dtype=np.float32), g, 5)
    assert idx.tolist() == [[0, 1, 2, -1, -1], [1, 0, 2, -1, -1]]
    assert np.all(np.isneginf(sims[:, 3:])) and np.all(np.isfinite(sims[:, :3]))
    idx, _ = search.search(g, g, 4, exclude=np.arange(3))
    assert idx.tolist() == [[1, 2, -1, -1], [0, 2, -1, -1], [0, 1, -1, -1]]


def test_collapsed_embeddings_fall_back_to_the_exact_rule_in_bounded_chunks(monkeypatch):
    monkeypatch.setattr(search, "EXACT_CELLS", 16)  # many chunks
    emb = np.ones((50, 3), np.float32)  # every similarity tied
    idx = search.search(emb, emb, 4, exclude=np.arange(50), gallery_block=11)[0]
    np.testing.assert_array_equal(idx, reference(emb, emb, 4, np.arange(50)))


def _blocks():
    return faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs


def test_knn_runs_faiss_with_its_blas_blocks_and_restores_faiss_settings(monkeypatch):
    before, seen = _blocks(), []
    exact = faiss.knn

    def spy(*args, **kwargs):
        seen.append(_blocks())
        return exact(*args, **kwargs)

    monkeypatch.setattr(faiss, "knn", spy)
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(20, 8)).astype("float32"), rng.normal(size=(50, 8)).astype("float32")
    search.knn(q, g, 3)
    assert seen == [search.BLAS_BLOCKS] and _blocks() == before
    monkeypatch.setattr(faiss, "knn", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        search.knn(q, g, 3)
    assert _blocks() == before


@pytest.mark.parametrize("seed", range(3))
def test_blocks_smaller_than_the_arrays_give_the_same_neighbours(monkeypatch, seed):
    # faiss's blocks cut queries and gallery into many pieces; the rule's answer is the same
    monkeypatch.setattr(search, "BLAS_BLOCKS", (3, 7))
    rng = np.random.default_rng(seed)
    queries, gallery = tied_vectors(rng, 40), tied_vectors(rng, 90)
    for k in (1, 12, 60):
        idx, _ = search.search(queries, gallery, k)
        np.testing.assert_array_equal(idx, reference(queries, gallery, k))
