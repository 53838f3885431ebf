"""Benchmark: the gallery index (``gallery_index.index``) vs bare faiss, in one run.

Clustered float32 embeddings (``--classes`` Gaussian clusters, unit norm), ``--rows`` of them.

- **Build.** Ours: ``index.build`` (exact up to ``--exact-max-rows``, else IVF with nprobe
  chosen by measured recall@10 >= ``--recall``). The baseline: bare faiss building the same
  index with the same parameters (``IndexFlatIP``, or ``IndexIVFFlat`` with our nlist and
  the same training sample size, nprobe set to ours), as a user who already knew the
  parameters would. Ratio = ours / faiss (target <= 1.2). Each alone in a fresh process for
  its peak RSS (VmHWM), timed there.
- **Recall@10** of the built index against exact search, on ``--queries`` fresh queries
  (rows drawn like the gallery's, not in it).
- **Lookup latency**: p50/p99 over repeated searches of batches of 1 and 100 queries, through
  ``index.search`` (ours, the faiss file: normalise + faiss), bare ``faiss.Index.search``, and
  the ``lookup`` signature's exact in-graph search (``signature.nearest``, TensorFlow; the
  encoder's cost, the same on every path, is left out).

    .venv/bin/python benchmarks/gallery_index.py                         # 10,000 rows
    .venv/bin/python benchmarks/gallery_index.py --rows 1000000          # IVF
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

from tfx_metric_learning.components.gallery_index import index  # noqa: E402
from tfx_metric_learning.components.gallery_index.settings import GallerySettings  # noqa: E402

SETTINGS = GallerySettings()  # the component's defaults (recall queries)


def make_data(rows: int, dim: int, classes: int, seed: int = 0) -> np.ndarray:
    """``rows`` unit vectors around ``classes`` random centres (the same for every seed)."""
    centres = np.random.default_rng(0).standard_normal((classes, dim), dtype=np.float32)
    rng = np.random.default_rng(seed + 1)
    x = centres[rng.integers(classes, size=rows)]
    x += 0.5 * rng.standard_normal((rows, dim), dtype=np.float32)
    return index.normalise(x)


def bare_faiss(x: np.ndarray, info: dict, seed: int) -> faiss.Index:
    """The same index built by faiss alone, with ``info``'s parameters."""
    dim = x.shape[1]
    if info["kind"] == index.FLAT:
        built = faiss.IndexFlatIP(dim)
        built.add(x)
        return built
    quantiser = faiss.IndexFlatIP(dim)
    built = faiss.IndexIVFFlat(quantiser, dim, info["nlist"], faiss.METRIC_INNER_PRODUCT)
    sample = min(len(x), index.TRAIN_POINTS_PER_LIST * info["nlist"])
    rng = np.random.default_rng(seed)
    built.cp.seed = seed
    built.train(x[np.sort(rng.choice(len(x), sample, replace=False))])
    built.add(x)
    built.nprobe = info["nprobe"]
    built.own_fields = True  # the index owns (and frees) its quantiser, as ours does
    quantiser.this.disown()
    return built


def build_once(impl: str, args) -> dict:
    """Builds with ``impl`` in this process: seconds, peak RSS, and ours' parameters."""
    x = make_data(args.rows, args.dim, args.classes)
    before = peak_rss_mb()
    started = time.perf_counter()
    if impl == "ours":
        _, info = index.build(
            x, args.exact_max_rows, args.recall, queries=SETTINGS.recall_queries, seed=args.seed
        )
        info = info.to_dict()
    else:
        info = json.loads(args.params)
        bare_faiss(x, info, args.seed)
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": peak_rss_mb(),
        "data_mb": before,
        "info": info,
    }


def measure(impl: str, args, params: dict | None = None) -> dict:
    """``build_once`` in a fresh process."""
    cmd = [sys.executable, __file__, "--only", impl, "--params", json.dumps(params or {})]
    for flag in ("rows", "dim", "classes", "exact_max_rows", "recall", "seed"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def latency(search, queries: np.ndarray, batch: int, repeats: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of ``search`` on ``repeats`` batches of ``batch`` queries."""
    times = []
    for r in range(repeats):
        start = (r * batch) % max(1, len(queries) - batch)
        chunk = queries[start : start + batch]
        t = time.perf_counter()
        search(chunk)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    """Builds both ways, then prints the ratio, peak memory, recall and lookup latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--exact-max-rows", type=int, default=100_000)
    parser.add_argument("--recall", type=float, default=0.99)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["ours", "faiss"], help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(build_once(args.only, args)))
        return

    print(f"gallery of {args.rows:,} rows x {args.dim} dims ({args.classes} clusters)")
    mine = measure("ours", args)
    theirs = measure("faiss", args, mine["info"])
    info = mine["info"]
    print(
        f"  index: {info['kind']} (nlist {info['nlist']}, nprobe {info['nprobe']}, measured "
        f"recall@10 {info['recall_at_k']:.4f} on {info['recall_queries']} queries)"
    )
    for name, m in (("ours ", mine), ("faiss", theirs)):
        print(
            f"  build {name} {m['seconds']:8.2f} s   peak RSS {m['peak_mb']:7.0f} MB "
            f"(data alone {m['data_mb']:.0f} MB)"
        )
    print(f"  build ratio ours/faiss {mine['seconds'] / theirs['seconds']:.3f}  (target <= 1.2)")

    x = make_data(args.rows, args.dim, args.classes)
    built, _ = index.build(
        x, args.exact_max_rows, args.recall, queries=SETTINGS.recall_queries, seed=args.seed
    )
    fresh = make_data(args.queries, args.dim, args.classes, seed=args.seed + 1)
    _, exact = faiss.knn(fresh, x, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(built, fresh, 10)
    print(f"  recall@10 on {args.queries} fresh queries: {index.recall_at_k(found, exact):.4f}")
    in_graph = signature_search(x)
    for batch in (1, 100):
        ours_p = latency(lambda q: index.search(built, q, 10), fresh, batch, args.repeats)
        bare_p = latency(lambda q: built.search(q, 10), fresh, batch, args.repeats)
        graph_p = latency(in_graph, fresh, batch, args.repeats)
        print(
            f"  lookup batch {batch:>3}: faiss file (ours) p50 {ours_p[0]:.3f} ms p99 "
            f"{ours_p[1]:.3f} ms; bare faiss p50 {bare_p[0]:.3f} ms p99 {bare_p[1]:.3f} ms; "
            f"in-graph signature search p50 {graph_p[0]:.3f} ms p99 {graph_p[1]:.3f} ms"
        )


def signature_search(x: np.ndarray):
    """The ``lookup`` signature's in-graph search over ``x``, as a traced function.

    ``signature.nearest`` on a batch of embeddings: the signature's cost beyond embedding.
    """
    import tensorflow as tf

    from tfx_metric_learning.components.gallery_index import signature

    vectors = tf.Variable(x, trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None, x.shape[1]], tf.float32)])
    def search(q):
        return signature.nearest(q, vectors, 10)

    return lambda q: search(tf.constant(q)).indices.numpy()


if __name__ == "__main__":
    main()
