"""Benchmark: our exact search (``search.search``) vs bare faiss ``IndexFlatIP``, in one run.

Ours is faiss's exact search plus what it leaves open (one more neighbour asked for, the
lower-index tie rule, the tie check); the baseline is faiss alone, as a user would call it.
Random float32 vectors (unit norm), exact top-k by inner product. Both searches run in this
process one after the other on the same data (each timed twice, in alternating order, the
faster kept); peak memory (VmHWM) is measured for each alone in a fresh subprocess.

    .venv/bin/python benchmarks/knn_search.py                      # 100k x 100k, d=128, k=10
    .venv/bin/python benchmarks/knn_search.py --queries 10000 --gallery 1000000 --skip-faiss
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

from tfx_metric_learning.core.retrieval import search  # noqa: E402


def make_data(n_queries: int, n_gallery: int, dim: int, seed: int = 0):
    """Unit-norm random queries and gallery."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n_queries, dim), dtype=np.float32)
    g = rng.standard_normal((n_gallery, dim), dtype=np.float32)
    return search.normalise(q), search.normalise(g)


def ours(q, g, k):
    """Our exact search (faiss, tie rule)."""
    return search.search(q, g, k)[0]


def faiss_search(q, g, k):
    """Faiss IndexFlatIP, exact inner-product search."""
    import faiss

    index = faiss.IndexFlatIP(g.shape[1])
    index.add(g)
    return index.search(q, k)[1]


def run_one(impl: str, args) -> None:
    """Runs one implementation and prints its time and peak memory as JSON."""
    q, g = make_data(args.queries, args.gallery, args.dim)
    before = peak_rss_mb()
    start = time.perf_counter()
    (ours if impl == "ours" else faiss_search)(q, g, args.k)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb(), "data_mb": before}))


def measure(impl: str, args) -> dict:
    """Runs one implementation in a fresh process (its own peak memory)."""
    cmd = [
        sys.executable,
        __file__,
        "--only",
        impl,
        "--queries",
        str(args.queries),
        "--gallery",
        str(args.gallery),
        "--dim",
        str(args.dim),
        "--k",
        str(args.k),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Times both searches, compares their neighbours, prints the ratio and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--only", choices=["ours", "faiss"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        run_one(args.only, args)
        return

    print(
        f"exact top-{args.k}: {args.queries:,} queries x {args.gallery:,} gallery, "
        f"dim {args.dim}, float32"
    )
    q, g = make_data(args.queries, args.gallery, args.dim)
    times = {"ours": [], "faiss": []}
    results = {}
    for impl in ["ours", "faiss", "faiss", "ours"][: 1 if args.skip_faiss else 4]:
        start = time.perf_counter()
        results[impl] = (ours if impl == "ours" else faiss_search)(q, g, args.k)
        times[impl].append(time.perf_counter() - start)
    mine, t_ours = results["ours"], min(times["ours"])
    mem_ours = measure("ours", args)
    print(
        f"  ours   {t_ours:8.1f} s   peak RSS {mem_ours['peak_mb']:7.0f} MB "
        f"(data alone {mem_ours['data_mb']:.0f} MB)"
    )
    if args.skip_faiss:
        return
    theirs, t_faiss = results["faiss"], min(times["faiss"])
    mem_faiss = measure("faiss", args)
    print(
        f"  faiss  {t_faiss:8.1f} s   peak RSS {mem_faiss['peak_mb']:7.0f} MB "
        f"(data alone {mem_faiss['data_mb']:.0f} MB)"
    )
    print(f"  ratio ours/faiss {t_ours / t_faiss:.3f}  (target <= 1.1)")
    same_rows = np.all(mine == theirs, axis=1)
    # rows that differ must differ only among equal similarities (ties)
    tie_only = 0
    for i in np.flatnonzero(~same_rows):
        a = np.sort(q[i] @ g[mine[i]].T)
        b = np.sort(q[i] @ g[theirs[i]].T)
        tie_only += bool(np.allclose(a, b, atol=1e-6))
    print(
        f"  identical neighbour lists: {same_rows.mean():.6f} of queries; "
        f"{tie_only} of the {int((~same_rows).sum())} others differ only in ties"
    )


if __name__ == "__main__":
    main()
