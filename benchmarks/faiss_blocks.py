"""Benchmark: faiss's exact search with ``search.BLAS_BLOCKS`` vs faiss's default blocks.

``search.knn`` runs faiss's CPU k-NN with 1,024 queries x 16,384 gallery rows per BLAS block;
faiss's default is 4,096 x 1,024. Both run in this process on the same clustered unit
vectors (200 class centres plus noise), alternating, ``--repeats`` times each; the median
of each and their ratio are printed, with the largest difference of a similarity between
the two and the share of queries whose neighbour sets are the same. The shapes are the
pipeline's at 1,000,000 rows: a scoring (20,000 queries x 300,000 eval rows, k the largest
class, 1,573), the same at k 10, and a classic fit's selection (20,000 x 20,000 at 32
dimensions, k 140).

    .venv/bin/python benchmarks/faiss_blocks.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from tfx_metric_learning.core.retrieval import search  # noqa: E402

DEFAULT_BLOCKS = (4096, 1024)  # faiss 1.x's distance_compute_blas_{query,database}_bs
SHAPES = [  # (queries, gallery rows, dimensions, k)
    (20_000, 300_000, 64, 1573),
    (20_000, 300_000, 64, 10),
    (20_000, 20_000, 32, 140),
]


def clustered(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 200 random class centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dim)).astype(np.float32)
    x = centres[rng.integers(0, 200, rows)] + 1.5 * rng.normal(size=(rows, dim))
    return search.normalise(x)


def timed(blocks: tuple[int, int], q: np.ndarray, g: np.ndarray, k: int):
    """``(seconds, similarities, indices)`` of ``search.knn`` with ``blocks``."""
    saved = search.BLAS_BLOCKS
    search.BLAS_BLOCKS = blocks
    try:
        started = time.perf_counter()
        sims, idx = search.knn(q, g, k)
        return time.perf_counter() - started, sims, idx
    finally:
        search.BLAS_BLOCKS = saved


def main() -> None:
    """Prints, per shape, both medians, their ratio and how far the results differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    for queries, rows, dim, k in SHAPES:
        g = clustered(rows, dim)
        q = g[:queries]
        seconds = {DEFAULT_BLOCKS: [], search.BLAS_BLOCKS: []}
        found = {}
        for _ in range(args.repeats):
            for blocks in seconds:
                took, sims, idx = timed(blocks, q, g, k)
                seconds[blocks].append(took)
                found[blocks] = (sims, idx)
        (s_default, i_default), (s_ours, i_ours) = found[DEFAULT_BLOCKS], found[search.BLAS_BLOCKS]
        same = np.mean([set(a) == set(b) for a, b in zip(i_default, i_ours, strict=True)])
        default = statistics.median(seconds[DEFAULT_BLOCKS])
        ours = statistics.median(seconds[search.BLAS_BLOCKS])
        print(
            f"{queries:,} x {rows:,}, d {dim}, k {k}: faiss default blocks {default:.2f} s, "
            f"{search.BLAS_BLOCKS[0]:,} x {search.BLAS_BLOCKS[1]:,} {ours:.2f} s, "
            f"ratio {default / ours:.2f}x; largest similarity difference "
            f"{float(np.abs(s_default - s_ours).max()):.1e}; same neighbour set for "
            f"{same:.4f} of the queries"
        )


if __name__ == "__main__":
    main()
