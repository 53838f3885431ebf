"""Scoring embeddings: every metric of a source's shards, leave-one-out or against a gallery.

``score`` computes the metrics of one set of query embeddings (retrieval, NMI and the
verification metrics); ``score_shards`` reads a source's shards (a seeded query sample when
``max_queries`` is set, the gallery tile by tile); ``score_all`` does that for each source.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
from tfx.types import artifact_utils

from tfx_metric_learning.components.retrieval_evaluator import embeddings as embeddings_lib
from tfx_metric_learning.components.retrieval_evaluator import verification
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.core.retrieval import metrics as metrics_lib
from tfx_metric_learning.core.retrieval import search


def score(
    queries: tuple[np.ndarray, np.ndarray],
    gallery: tuple[np.ndarray | search.Tiles, np.ndarray] | None,
    ks: list[int],
    seed: int = 0,
    query_ids: np.ndarray | None = None,
    population: int | None = None,
    keys: np.ndarray | None = None,
) -> dict:
    """Every metric of one model; ``metrics`` holds the flat numbers.

    ``nearest``: each query's first neighbour (``retrieval_metrics``' ``nearest``), in query
    order, with the queries' row ``keys`` when given (what ``nearest_record`` writes).

    Retrieval runs leave-one-out, or against ``gallery`` (embeddings or tiles, and labels),
    leave-one-out on it when ``query_ids`` place the queries in it; ``population`` is the
    number of rows the queries were sampled from (``retrieval_metrics``). NMI and the
    verification metrics use the query embeddings, in the order of their row ``keys`` when
    given (``embeddings.row_keys``): the seeded pairs and k-means then do not depend on the
    order in which a runner's workers wrote the rows.
    """
    retrieval = metrics_lib.retrieval_metrics(
        queries[0],
        queries[1],
        ks,
        gallery_embeddings=None if gallery is None else gallery[0],
        gallery_labels=None if gallery is None else gallery[1],
        details=True,
        query_ids=query_ids,
        population=population,
        nearest=True,
    )
    nearest = retrieval.pop("nearest")
    if keys is not None:
        nearest["keys"] = np.asarray(keys, np.uint64)
    emb, labels = queries
    if keys is not None:
        order = np.argsort(np.asarray(keys), kind="stable")
        emb, labels = np.asarray(emb)[order], np.asarray(labels)[order]
    pairs = verification.pair_distances(emb, labels, seed=seed)
    verify = verification.summarise_pairs(*pairs)
    flat = {k: v for k, v in retrieval.items() if isinstance(v, (int, float))}
    flat["nmi"] = verification.cluster_nmi(emb, labels, seed=seed)
    flat.update(verify)
    return {
        "metrics": flat,
        "retrieval": retrieval,
        "verification": verify,
        "pairs": pairs,
        "nearest": nearest,
    }


def score_shards(
    emb_dir: str,
    source: str,
    query_split: str,
    gallery_split: str | None,
    ks: list[int],
    seed: int = 0,
    max_queries: int = 0,
    examples_uri: str = "",
) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """``score`` of one source's shards, and the ``(embeddings, labels)`` of its queries.

    Leave-one-out on ``query_split`` without a ``gallery_split``. With ``max_queries``, the
    queries are a seeded sample of that many rows (``embeddings.sample_rows``) that search the
    whole gallery; the retrieval metrics then carry their ``sampling_error``. Shards that fit in
    one tile are read once; a larger gallery is read tile by tile (``EmbeddingShards.tiles``),
    and only the queries are held in memory.
    """
    labels, keys, take, tiles = _read(emb_dir, source, query_split)
    if len(labels) == 0:
        raise ValueError(f"split {query_split!r} of {examples_uri or emb_dir} is empty")
    rows = embeddings_lib.sample_rows(keys, max_queries)
    sampled = len(rows) < len(labels)
    queries = (take(rows), labels[rows])
    if gallery_split:
        g_labels, _, _, g_tiles = _read(emb_dir, source, gallery_split)
        if len(g_labels) == 0:
            raise ValueError(f"split {gallery_split!r} of {examples_uri or emb_dir} is empty")
        gallery, ids = (g_tiles, g_labels), None
    elif sampled:
        gallery, ids = (tiles, labels), rows
    else:
        gallery, ids = None, None
    result = score(
        queries,
        gallery,
        ks,
        seed=seed,
        query_ids=ids,
        population=len(labels) if sampled else None,
        keys=keys[rows],
    )
    return result, queries


def _read(emb_dir: str, source: str, split: str):
    """``(labels, keys, take, tiles)`` of a source's split (``EmbeddingShards``).

    ``take(rows)`` gives the embeddings at sorted positions and ``tiles`` the gallery's
    ``search.Tiles``: from memory when the shards fit in one tile (read once), else read from
    the shards again each time.
    """
    shards = embeddings_lib.EmbeddingShards(emb_dir, source, split)
    whole = shards.read()
    if whole is None:
        labels, keys = shards.index()
        return labels, keys, shards.take, shards.tiles()
    labels, keys, emb = whole
    return labels, keys, lambda rows: emb[rows], lambda: iter([emb])


@dataclasses.dataclass
class Scored:
    """What was measured, per model and raw baseline, and how long each step took.

    ``candidate_queries``: the candidate's query embeddings and labels, for the report.
    """

    results: dict
    candidate_queries: tuple
    seconds: dict


def scores_key(examples, settings: EvaluationSettings) -> dict:
    """What a model's scores depend on beside the model.

    The examples, the splits, the query sample and the ks of Recall@k.
    """
    return {
        "examples": examples.uri,
        "split": settings.split,
        "query_split": settings.query_split,
        "gallery_split": settings.gallery_split,
        "seed": settings.seed,
        "max_eval_queries": settings.max_eval_queries,
        "recall_at_k": sorted(set(settings.recall_at_k)),
    }


def splits_to_read(settings: EvaluationSettings, examples) -> dict[str, str]:
    """``{split: file pattern}`` of the examples the evaluation reads (checked to exist)."""
    splits = (
        [settings.query_split, settings.gallery_split] if settings.query_split else [settings.split]
    )
    available = artifact_utils.decode_split_names(examples.split_names)
    for name in splits:
        if name not in available:
            raise ValueError(f"split {name!r} is not in {examples.uri}: {available}")
    return {
        name: os.path.join(artifact_utils.get_split_uri([examples], name), "*") for name in splits
    }


def score_all(
    emb_dir: str, names: list[str], patterns: dict, settings: EvaluationSettings, examples_uri
) -> tuple[dict, tuple, dict]:
    """``score_shards`` for each of ``names`` (models, then raw baselines).

    Returns their results, the candidate's queries and the seconds each took.
    """
    splits = list(patterns)
    results, candidate_queries, seconds = {}, None, {}
    for name in names:
        started = time.perf_counter()
        results[name], queries = score_shards(
            emb_dir,
            name,
            splits[0],
            settings.gallery_split if settings.query_split else None,
            settings.recall_at_k,
            seed=settings.seed,
            max_queries=settings.max_eval_queries,
            examples_uri=examples_uri,
        )
        if name == "candidate":
            candidate_queries = queries
        seconds[f"score_{name}"] = time.perf_counter() - started
    return results, candidate_queries, seconds
