"""Exact k-nearest-neighbour search by cosine similarity on faiss, ties to the lower index.

The search is faiss's exact inner-product k-NN (``faiss.knn``: BLAS products in blocks, a heap
per query; ``faiss.knn_gpu`` when the installed faiss build sees a GPU), the search
pytorch-metric-learning's ``AccuracyCalculator`` runs, on L2-normalised vectors. A gallery
too large for memory is given as tiles (a callable that yields its rows in order, e.g. shard
files read one at a time); each tile is searched and merged into one ``faiss.ResultHeap`` per
query. What is written here is only what faiss leaves open:

- **Ties.** faiss does not order equal similarities. Here ties always go to the lower gallery
  index: each row is re-sorted by (similarity descending, index ascending), and faiss is
  asked for one neighbour more than needed (two more leave-one-out, for the query itself).
  When the k-th kept similarity is strictly above the first one left out, the kept set is
  exact, since faiss's values are the exact top-(k+1) multiset. When they are equal (a tie
  across the cut, which random data almost never has and duplicate vectors always have), that
  row is recomputed by a stable numpy sort over the tiles (``_exact_rows``).
- **Leave-one-out.** ``exclude[i]`` is a gallery index query ``i`` never retrieves (itself);
  it is dropped from the row when faiss returned it, else the row's last entry is dropped.

Similarities are those faiss computes in float32: two items whose similarities differ in the
last bit are not tied.

**Block shape.** faiss's CPU search multiplies blocks of ``distance_compute_blas_query_bs``
queries by ``distance_compute_blas_database_bs`` gallery rows (4,096 x 1,024 by default) and
keeps each query's best from each block. ``knn`` runs it with 1,024 x 16,384 (``BLAS_BLOCKS``;
a 64 MB block of similarities instead of 16 MB): the BLAS product of a 64-dimensional search
is wider and runs faster. On the 2-core machine, medians of 2-3 alternating runs, default vs
these blocks: 20,000 x 300,000 at k 1,573 21.9 vs 18.9 s, at k 10 16.0 vs 12.3 s; 20,000 x
20,000 at 32 dimensions, k 140, 1.46 vs 1.14 s. The results are faiss's exact top-k either
way; a similarity may differ in its last bits (4e-7 at most on those arrays), as the BLAS
sums the products in another order.

Memory: the tile being searched, faiss's block buffers, and O(Nq x (k + 2)) for the heaps;
the full similarity matrix never exists.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable

import faiss
import numpy as np

QUERY_BLOCK = 16384  # queries per faiss call at least ...
RESULT_BYTES = 1 << 29  # ... and more while one call's results (k x 12 bytes a query) fit
GALLERY_BLOCK = 262144  # rows per tile of an in-memory gallery
TIED = -2  # marks a row whose k-th neighbour is tied with the first left out
EXACT_CELLS = 1 << 22  # similarities per chunk of the tie-exact recomputation
# faiss's BLAS blocks (queries, gallery rows) for the CPU search: see "Block shape" above
BLAS_BLOCKS = (1024, 16384)
_BLOCKS_LOCK = threading.Lock()  # faiss's block settings are process-wide
# a gallery given as tiles: a callable that yields its rows in gallery order, each time called
Tiles = Callable[[], Iterable[np.ndarray]]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as contiguous float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


@functools.cache
def _gpu_resources():
    """Faiss GPU resources when the installed build has a GPU, else None (the CPU build)."""
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0 and hasattr(faiss, "knn_gpu"):
        return faiss.StandardGpuResources()
    return None


@contextlib.contextmanager
def _blas_blocks():
    """The CPU search with ``BLAS_BLOCKS``; its process-wide settings restored after.

    One search at a time holds them (a lock), so a thread's search never restores another's.
    """
    settings = faiss.cvar
    with _BLOCKS_LOCK:
        saved = settings.distance_compute_blas_query_bs, settings.distance_compute_blas_database_bs
        settings.distance_compute_blas_query_bs, settings.distance_compute_blas_database_bs = (
            BLAS_BLOCKS
        )
        try:
            yield
        finally:
            settings.distance_compute_blas_query_bs = saved[0]
            settings.distance_compute_blas_database_bs = saved[1]


def knn(q: np.ndarray, g: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Faiss's exact top-k by inner product: ``(similarities, indices)``, -1 where none.

    ``faiss.knn_gpu`` when the build sees a GPU, else ``faiss.knn`` with ``BLAS_BLOCKS``.
    Ties are in faiss's order (``search`` orders them).
    """
    resources = _gpu_resources()
    if resources is not None:
        return faiss.knn_gpu(resources, q, g, k, metric=faiss.METRIC_INNER_PRODUCT)
    with _blas_blocks():
        return faiss.knn(q, g, k, metric=faiss.METRIC_INNER_PRODUCT)


def _as_tiles(gallery: np.ndarray | Tiles, gallery_block: int) -> Tiles:
    if callable(gallery):
        return gallery
    return lambda: (gallery[s : s + gallery_block] for s in range(0, len(gallery), gallery_block))


def _exact_rows(
    q: np.ndarray, tiles: Tiles, k: int, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The reference rule for a few rows: a stable sort by similarity over each tile.

    The running best (lower indices) comes before each new tile in the merge, so a stable
    sort keeps every tie on the lower index. Rows go in chunks of about ``EXACT_CELLS``
    similarities, so memory stays bounded however many rows are tied.
    """
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.full((len(q), 0), -1, np.int64)
    offset = 0
    for tile in tiles():
        t = normalise(tile)
        ids = np.arange(offset, offset + len(t))
        width = min(k, best_s.shape[1] + len(t))
        new_s = np.empty((len(q), width), np.float32)
        new_i = np.empty((len(q), width), np.int64)
        chunk = max(1, EXACT_CELLS // max(len(t), 1))
        for start in range(0, len(q), chunk):
            rows = slice(start, start + chunk)
            sims = q[rows] @ t.T
            sims[exclude[rows, None] == ids[None, :]] = -np.inf
            sims = np.concatenate([best_s[rows], sims], axis=1)
            order = np.argsort(-sims, axis=1, kind="stable")[:, :width]
            new_s[rows] = np.take_along_axis(sims, order, axis=1)
            both = np.concatenate([best_i[rows], np.broadcast_to(ids, (len(sims), len(t)))], 1)
            new_i[rows] = np.take_along_axis(both, order, axis=1)
        best_s, best_i = new_s, new_i
        offset += len(t)
    return _pad(best_i, best_s, k)


def _pad(idx: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns up to ``k``; empty slots (no gallery item left) are index -1, similarity -inf."""
    missing = k - idx.shape[1]
    if missing > 0:
        idx = np.pad(idx, ((0, 0), (0, missing)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, missing)), constant_values=-np.inf)
    empty = (idx < 0) | ~np.isfinite(sims) | (sims <= -np.finfo(np.float32).max)
    if not empty.any():
        return idx, sims.astype(np.float32, copy=False)
    return np.where(empty, -1, idx), np.where(empty, -np.inf, sims).astype(np.float32)


def search(
    queries: np.ndarray,
    gallery: np.ndarray | Tiles,
    k: int,
    exclude: np.ndarray | None = None,
    query_block: int = QUERY_BLOCK,
    gallery_block: int = GALLERY_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices [Nq, k], similarities [Nq, k])`` of the k most similar gallery items.

    ``gallery`` is an array or tiles (see ``Tiles``); both are L2-normalised here.
    ``exclude`` holds, per query, a gallery index it never retrieves (-1: none). Slots beyond
    the number of available gallery items hold index -1 and similarity -inf.
    """
    q = normalise(queries)
    tiles = _as_tiles(gallery, gallery_block)
    loo = exclude is not None
    exclude = np.full(len(q), -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    if len(exclude) != len(q):
        raise ValueError(f"{len(q)} queries but {len(exclude)} excluded ids")
    wanted = k + 1 + int(loo)
    query_block = max(query_block, RESULT_BYTES // (12 * wanted))
    found, heap, offset = None, None, 0
    for tile in tiles():
        t = normalise(tile)
        results = []
        for start in range(0, len(q), query_block):
            stop = min(start + query_block, len(q))
            sims, idx = knn(q[start:stop], t, min(wanted, len(t)))
            if offset:
                idx = np.where(idx >= 0, idx + offset, -1)
            results.append((start, stop, sims, idx))
        if found is None and heap is None:  # the first tile: its results may be the answer
            found = results
        else:  # a second tile: merge every tile's results in one heap per query
            if heap is None:
                heap = faiss.ResultHeap(len(q), wanted, keep_max=True)
                for start, stop, sims, idx in found:
                    heap.add_result_subset(np.arange(start, stop), sims, idx)
                found = None
            for start, stop, sims, idx in results:
                heap.add_result_subset(np.arange(start, stop), sims, idx)
        offset += len(t)
    if heap is not None:
        heap.finalize()
        found = [
            (start, min(start + query_block, len(q)), heap.D[start : start + query_block],
             heap.I[start : start + query_block])
            for start in range(0, len(q), query_block)
        ]  # fmt: skip
    out_idx = np.empty((len(q), k), np.int64)
    out_sims = np.empty((len(q), k), np.float32)
    for start, stop, sims, idx in found or []:  # bounded temporaries
        rows = slice(start, stop)
        out_idx[rows], out_sims[rows] = _tie_rule(idx, sims, k, exclude[rows] if loo else None)
    del heap, found
    tied = np.flatnonzero(out_idx[:, 0] == TIED)
    if len(tied):
        out_idx[tied], out_sims[tied] = _exact_rows(q[tied], tiles, k, exclude[tied])
    return out_idx, out_sims


def _tie_rule(
    idx: np.ndarray, sims: np.ndarray, k: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of faiss's ``k + 1`` (``k + 2`` leave-one-out) per row, ties to lower index.

    Rows with a tie across the cut come back with index ``TIED`` in the first column.
    """
    wanted = k + 1 + int(exclude is not None)  # what faiss was asked for (fewer: padded)
    idx, sims = _pad(idx, sims, wanted)
    # similarity descending, then index ascending. faiss returns each row by similarity
    # descending, so only the entries equal to a neighbour in their row need ordering: those
    # alone (a few percent of the entries, even at k in the thousands) are gathered and
    # sorted by (row, similarity descending, index) and put back in the same places, which
    # hold the same similarities in the same order; a row faiss left unordered (never seen)
    # first gets the full lexsort.
    unordered = np.flatnonzero((sims[:, 1:] > sims[:, :-1]).any(axis=1))
    if len(unordered):
        part_i, part_s = idx[unordered], sims[unordered]
        order = np.lexsort((part_i, -part_s), axis=-1)
        idx[unordered] = np.take_along_axis(part_i, order, 1)
        sims[unordered] = np.take_along_axis(part_s, order, 1)
    equal = sims[:, 1:] == sims[:, :-1]
    in_run = np.zeros(sims.shape, bool)
    in_run[:, 1:] = equal
    in_run[:, :-1] |= equal
    rows, cols = np.nonzero(in_run)
    if len(rows):
        part_i = idx[rows, cols]
        idx[rows, cols] = part_i[np.lexsort((part_i, -sims[rows, cols], rows))]
    if exclude is not None:
        # drop the query itself, or the last entry where faiss did not return it: most rows
        # hold the query first (its own similarity is the largest), so those are one slice
        # and only the others are gathered column by column
        drop = idx == exclude[:, None]
        at = np.where(drop.any(axis=1), drop.argmax(axis=1), wanted - 1)  # first match
        kept_i, kept_s = idx[:, 1:].copy(), sims[:, 1:].copy()
        other = np.flatnonzero(at > 0)
        if len(other):
            cols = np.arange(wanted - 1)[None, :]
            keep = cols + (cols >= at[other, None])  # every column but ``at``, in order
            kept_i[other] = np.take_along_axis(idx[other], keep, 1)
            kept_s[other] = np.take_along_axis(sims[other], keep, 1)
        idx, sims = kept_i, kept_s
    tied = (sims[:, k - 1] == sims[:, k]) & (idx[:, k] >= 0)
    idx, sims = idx[:, :k], sims[:, :k]
    idx[tied, 0] = TIED
    return idx, sims
