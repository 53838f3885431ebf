"""Retrieval metrics on embeddings, leave-one-out: every query is excluded from its own gallery.

Neighbours are ranked by cosine similarity (dot product of L2-normalised vectors), ties broken
by gallery index. Exact search runs in query blocks, each keeping only its running top-k, so
memory is O(block x N + N x k), never O(N^2).

For a query ``q`` with ``R_q`` other gallery items of its label, and ``match_q(i)`` = 1 when
the ``i``-th neighbour shares the label (Musgrave et al., "A Metric Learning Reality Check",
ECCV 2020):

- ``precision_at_1`` = mean_q match_q(1)
- ``recall_at_k`` = mean_q [any of the k nearest matches]
- ``r_precision`` = mean_q (1/R_q) sum_{i<=R_q} match_q(i)
- ``map_at_r`` = mean_q (1/R_q) sum_{i<=R_q} match_q(i) * P_q(i),
  where ``P_q(i) = (1/i) sum_{j<=i} match_q(j)``

Queries with ``R_q = 0`` (the only example of their class) can retrieve nothing right; they are
left out of every mean and counted in ``queries_without_positive``.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BLOCK = 1024


def metric_names(recall_at_k: list[int] | tuple[int, ...] = (1, 5, 10)) -> list[str]:
    """Names of the metrics ``retrieval_metrics`` returns for these k."""
    return [
        "precision_at_1",
        *[f"recall_at_{k}" for k in sorted(set(recall_at_k))],
        "r_precision",
        "map_at_r",
    ]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _rank_keys(sims: np.ndarray, offset_ids: np.ndarray) -> np.ndarray:
    """Unique int64 keys ordering by similarity, then by lower gallery index (ties)."""
    bits = (sims + np.float32(0.0)).astype(np.float32).view(np.int32)  # -0.0 -> +0.0
    ordered = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)
    return (ordered << 32) + (np.int64(0xFFFFFFFF) - offset_ids)


def nearest_neighbours(embeddings: np.ndarray, k: int, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Indices ``[N, k]`` of each row's k most similar other rows (self excluded).

    Ties in similarity go to the lower index, so the result does not depend on ``block``.
    """
    x = normalise(embeddings)
    n = len(x)
    k = min(k, n - 1)
    out = np.empty((n, k), dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = x[start:stop] @ x.T  # [b, N]
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf
        keys = _rank_keys(sims, ids[None, :])
        top = np.argpartition(keys, n - k, axis=1)[:, n - k :]
        top_keys = np.take_along_axis(keys, top, axis=1)
        order = np.argsort(-top_keys, axis=1)
        out[start:stop] = np.take_along_axis(top, order, axis=1)
    return out


def retrieval_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray | list,
    recall_at_k: list[int] | tuple[int, ...] = (1, 5, 10),
    block: int = DEFAULT_BLOCK,
) -> dict[str, float]:
    """Precision@1, Recall@k, R-Precision and MAP@R, plus query counts (see module doc)."""
    labels = np.asarray(labels)
    n = len(labels)
    if n != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {n} labels")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"retrieval needs at least 2 classes, got {len(classes)} ({list(classes)[:3]})"
        )
    r = counts[inverse] - 1  # other items of the query's class
    ks = sorted(set(recall_at_k))
    k_max = int(min(n - 1, max(max(ks), r.max())))
    neighbours = nearest_neighbours(embeddings, k_max, block)
    match = inverse[neighbours] == inverse[:, None]  # [N, k_max]
    valid = r > 0
    if not valid.any():
        raise ValueError("no query has another example of its class in the gallery")
    m = match[valid]
    rv = r[valid]
    ranks = np.arange(1, k_max + 1)
    within_r = ranks[None, :] <= rv[:, None]
    hits_within_r = (m & within_r).astype(np.float64)
    precision_at_i = np.cumsum(m, axis=1) / ranks[None, :]
    result = {
        "precision_at_1": float(m[:, 0].mean()),
        **{f"recall_at_{k}": float(m[:, : min(k, k_max)].any(axis=1).mean()) for k in ks},
        "r_precision": float((hits_within_r.sum(axis=1) / rv).mean()),
        "map_at_r": float(((hits_within_r * precision_at_i).sum(axis=1) / rv).mean()),
        "num_queries": int(valid.sum()),
        "queries_without_positive": int((~valid).sum()),
        "num_classes": int(len(classes)),
    }
    return result
