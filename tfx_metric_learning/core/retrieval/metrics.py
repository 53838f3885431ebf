"""Retrieval metrics: leave-one-out on one split, or queries against a separate gallery.

Neighbours are ranked by cosine similarity, ties to the lower gallery index (``search``). For
a query ``q`` with ``R_q`` gallery items of its label (other than itself), and
``match_q(i)`` = 1 when the ``i``-th neighbour shares the label (Musgrave et al., "A Metric
Learning Reality Check", ECCV 2020):

- ``precision_at_1`` = mean_q match_q(1)
- ``recall_at_k`` = mean_q [any of the k nearest matches]
- ``r_precision`` = mean_q (1/R_q) sum_{i<=R_q} match_q(i)
- ``map_at_r`` = mean_q (1/R_q) sum_{i<=R_q} match_q(i) * P_q(i),
  where ``P_q(i) = (1/i) sum_{j<=i} match_q(j)``

Queries with ``R_q = 0`` (alone in their class) can retrieve nothing right; they are left out
of every mean and counted in ``queries_without_positive``. The neighbours come from ``search``
(faiss, exact); the metrics are accumulated one block of queries at a time.

**Sampled queries.** When the queries are a uniform sample of ``n`` of a split's ``N`` rows
(``population=N``), each metric above is a mean of per-query terms, and ``sampling_error``
holds the half-width of its 95% normal interval, ``1.96 * s / sqrt(n') * sqrt(1 - n/N)``
(``s`` the standard deviation of the ``n'`` counted terms, with the finite-population
correction; 0 when every row is a query). A normal interval: for a rate that every sampled query
hits (or misses) it is 0, and for rates near 0 or 1 in small samples it is too narrow.
"""

from __future__ import annotations

import numpy as np

from tfx_metric_learning.core.retrieval import search

DEFAULT_BLOCK = 4096
CURVE_MAX_K = 20
Z_95 = 1.959963984540054  # the 97.5% normal quantile


def retrieval_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray | list,
    recall_at_k: list[int] | tuple[int, ...] = (1, 5, 10),
    block: int = DEFAULT_BLOCK,
    gallery_embeddings: np.ndarray | search.Tiles | None = None,
    gallery_labels: np.ndarray | list | None = None,
    gallery_block: int = search.GALLERY_BLOCK,
    details: bool = False,
    query_ids: np.ndarray | None = None,
    population: int | None = None,
    nearest: bool = False,
) -> dict:
    """Precision@1, Recall@k, R-Precision and MAP@R (see the module doc).

    Without a gallery, every query searches the other items of ``embeddings``. With one
    (an array, or ``search.Tiles`` for a gallery read shard by shard), queries search it; with
    ``query_ids`` too, query ``i`` is gallery item ``query_ids[i]`` and never retrieves itself
    (leave-one-out on a sample of the gallery). ``population``: the number of rows the queries
    were sampled from (adds ``sampling_error``). With ``details``, the result also holds
    ``recall_curve`` (Recall@1..20) and ``per_class`` (queries, R-Precision and MAP@R per
    label).
    """
    labels = np.asarray(labels)
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(embeddings)} query embeddings but {len(labels)} labels")
    if gallery_embeddings is None:
        gallery_embeddings, gallery_labels = embeddings, labels
        query_ids = np.arange(len(labels))
    g_labels = np.asarray(gallery_labels)
    if not callable(gallery_embeddings) and len(g_labels) != len(gallery_embeddings):
        raise ValueError(f"{len(gallery_embeddings)} gallery embeddings but {len(g_labels)} labels")
    if query_ids is not None and len(query_ids) != len(labels):
        raise ValueError(f"{len(labels)} queries but {len(query_ids)} query ids")
    leave_one_out = query_ids is not None
    classes, g_inverse = np.unique(g_labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"retrieval needs at least 2 classes, got {len(classes)} ({list(classes)[:3]})"
        )
    counts = np.bincount(g_inverse, minlength=len(classes))
    pos = np.searchsorted(classes, labels)
    known = (pos < len(classes)) & (classes[np.minimum(pos, len(classes) - 1)] == labels)
    q_class = np.where(known, pos, -1)
    r = np.where(known, counts[np.minimum(pos, len(classes) - 1)], 0) - (1 if leave_one_out else 0)
    r = np.maximum(r, 0)
    ks = sorted(set(recall_at_k))
    n_gallery = len(g_labels) - (1 if leave_one_out else 0)  # >= 1: 2 classes at least
    k_max = int(min(n_gallery, max(max(ks), CURVE_MAX_K if details else 1, int(r.max()))))
    neighbours, similarities = search.search(
        embeddings, gallery_embeddings, k_max, query_ids, gallery_block=gallery_block
    )
    first = None
    if nearest:
        found = neighbours[:, 0] >= 0
        first = {
            "similarity": np.where(found, similarities[:, 0], -np.inf).astype(np.float64),
            "correct": found & (g_inverse[np.maximum(neighbours[:, 0], 0)] == q_class),
        }
    del similarities

    # per-query values, summed once at the end: the result does not depend on block sizes
    hit_at_1 = np.zeros(len(labels))
    r_prec = np.zeros(len(labels))
    avg_prec = np.zeros(len(labels))
    first_hits = np.full(len(labels), k_max)
    ranks = np.arange(1, k_max + 1)
    for start in range(0, len(labels), block):
        idx = neighbours[start : start + block]
        stop = start + len(idx)
        rq = r[start:stop]
        valid = rq > 0
        if not valid.any():
            continue
        match = (g_inverse[np.maximum(idx, 0)] == q_class[start:stop, None]) & (idx >= 0)
        rows = np.arange(start, stop)[valid]
        m, rv = match[valid], rq[valid]
        first_hits[rows] = np.where(m.any(axis=1), m.argmax(axis=1), k_max)
        hit_at_1[rows] = m[:, 0]
        hits = (m & (ranks[None, :] <= rv[:, None])).astype(np.float64)
        r_prec[rows] = hits.sum(axis=1) / rv
        avg_prec[rows] = (hits * np.cumsum(m, axis=1) / ranks[None, :]).sum(axis=1) / rv

    valid = r > 0
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("no query has another example of its class in the gallery")
    recall_hits = np.cumsum(np.bincount(first_hits[valid], minlength=k_max + 1))[:k_max]
    result = {
        "precision_at_1": hit_at_1[valid].sum() / n_valid,
        **{f"recall_at_{k}": recall_hits[min(k, k_max) - 1] / n_valid for k in ks},
        "r_precision": r_prec[valid].sum() / n_valid,
        "map_at_r": avg_prec[valid].sum() / n_valid,
        "num_queries": n_valid,
        "queries_without_positive": int(len(labels) - n_valid),
        "num_classes": int(len(np.unique(labels))),
    }
    result = {k: float(v) if isinstance(v, (np.floating, float)) else v for k, v in result.items()}
    if population is not None:
        terms = {
            "precision_at_1": hit_at_1[valid],
            **{f"recall_at_{k}": (first_hits[valid] < k).astype(float) for k in ks},
            "r_precision": r_prec[valid],
            "map_at_r": avg_prec[valid],
        }
        result["sampling_error"] = {
            name: sampling_error(values, len(labels), population) for name, values in terms.items()
        }
    if details:
        curve_k = min(CURVE_MAX_K, k_max)
        result["recall_curve"] = [float(recall_hits[i] / n_valid) for i in range(curve_k)]
        cls = q_class[valid]
        n_per = np.bincount(cls, minlength=len(classes))
        rp_per = np.bincount(cls, weights=r_prec[valid], minlength=len(classes))
        ap_per = np.bincount(cls, weights=avg_prec[valid], minlength=len(classes))
        result["per_class"] = {
            str(classes[c]): {
                "queries": int(n_per[c]),
                "r_precision": float(rp_per[c] / n_per[c]),
                "map_at_r": float(ap_per[c] / n_per[c]),
            }
            for c in range(len(classes))
            if n_per[c] > 0
        }
        lone = [str(label) for label, rr in zip(labels, r, strict=True) if rr == 0]
        result["classes_without_positive"] = sorted(set(lone))
    if first is not None:
        result["nearest"] = first
    return result


def sampling_error(terms: np.ndarray, sample: int, population: int) -> float:
    """Half-width of the 95% normal interval of ``mean(terms)`` (see the module doc)."""
    if population < sample:
        raise ValueError(f"a sample of {sample} queries from {population} rows")
    if len(terms) < 2 or sample == population:
        return 0.0
    correction = 1.0 - sample / population
    return float(Z_95 * np.std(terms, ddof=1) / np.sqrt(len(terms)) * np.sqrt(correction))
