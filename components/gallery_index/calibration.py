"""The match threshold: the similarity above which a lookup says "same class".

A lookup answers with its nearest gallery item and says "match" when their cosine similarity
is at least the threshold ``t``, "unknown" otherwise. Calibrated on labelled queries whose
classes the gallery holds (the eval split searched leave-one-out: each row against the
others), where a query's answer is *correct* when its nearest neighbour has its label:

- precision(t) = #(accepted and correct) / #accepted
- recall(t) = #(accepted and correct) / #correct
- false accept rate(t) = #(accepted and wrong) / #wrong
- false reject rate(t) = #(rejected and correct) / #correct = 1 - recall(t)

``calibrate`` takes scikit-learn's ``precision_recall_curve`` over the queries' nearest
similarities (scores) and correctness (labels) and keeps, among the thresholds whose
precision reaches the target, the one of highest recall (the lowest such threshold on a
monotone curve), as TensorFlow Similarity's ``calibrate`` does for its "optimal" point.
When no threshold reaches the target, there is no threshold: every lookup says "unknown"
(``threshold`` is None) and the calibration says so. The curve is kept (at most
``CURVE_POINTS`` points, evenly spaced in rank) for the report.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import precision_recall_curve

from tfx_metric_learning.core.retrieval.search import search

CURVE_POINTS = 101


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The chosen threshold and the rates at it, over ``queries`` labelled queries."""

    target_precision: float
    threshold: float | None
    precision: float | None
    recall: float
    false_accept_rate: float
    false_reject_rate: float
    queries: int
    correct_at_1: float  # the fraction of queries whose nearest neighbour has their label
    curve: dict  # {"threshold": [...], "precision": [...], "recall": [...]}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def nearest_neighbours(
    embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(similarity to the nearest other row, whether it has the query's label)``.

    ``queries``: the positions of the rows searched (default: every row), each against every
    other row of ``embeddings``.
    """
    labels = np.asarray(labels)
    queries = np.arange(len(labels)) if queries is None else np.asarray(queries, np.int64)
    idx, sims = search(embeddings[queries], embeddings, 1, exclude=queries)
    found = idx[:, 0] >= 0
    correct = np.zeros(len(queries), bool)
    correct[found] = labels[idx[found, 0]] == labels[queries[found]]
    return np.where(found, sims[:, 0], -np.inf).astype(np.float64), correct


def rates(top_similarity: np.ndarray, correct: np.ndarray, threshold: float | None) -> dict:
    """Precision, recall and the false accept and reject rates at ``threshold``."""
    accepted = np.zeros(len(correct), bool) if threshold is None else top_similarity >= threshold
    right = int(correct.sum())
    wrong = len(correct) - right
    hits = int((accepted & correct).sum())
    return {
        "precision": hits / int(accepted.sum()) if accepted.any() else None,
        "recall": hits / right if right else 0.0,
        "false_accept_rate": int((accepted & ~correct).sum()) / wrong if wrong else 0.0,
        "false_reject_rate": int((~accepted & correct).sum()) / right if right else 0.0,
    }


def calibrate(
    top_similarity: np.ndarray, correct: np.ndarray, target_precision: float
) -> Calibration:
    """The threshold of highest recall whose precision reaches ``target_precision``."""
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"the target precision must be in (0, 1], got {target_precision}")
    top_similarity = np.asarray(top_similarity, np.float64)
    correct = np.asarray(correct, bool)
    if len(correct) == 0:
        raise ValueError("no labelled queries to calibrate the match threshold on")
    usable = np.isfinite(top_similarity)
    threshold = None
    curve = {"threshold": [], "precision": [], "recall": []}
    if correct[usable].any():
        precision, recall, thresholds = precision_recall_curve(
            correct[usable], top_similarity[usable]
        )
        # precision[i], recall[i] hold at thresholds[i]; the last point (recall 0) has none
        reaching = np.flatnonzero(precision[:-1] >= target_precision)
        if len(reaching):
            best = reaching[np.argmax(recall[:-1][reaching])]
            threshold = float(thresholds[best])
        keep = np.unique(np.linspace(0, len(thresholds) - 1, CURVE_POINTS).round().astype(int))
        curve = {
            "threshold": thresholds[keep].tolist(),
            "precision": precision[keep].tolist(),
            "recall": recall[keep].tolist(),
        }
    at = rates(top_similarity, correct, threshold)
    return Calibration(
        target_precision=target_precision,
        threshold=threshold,
        precision=at["precision"],
        recall=at["recall"],
        false_accept_rate=at["false_accept_rate"],
        false_reject_rate=at["false_reject_rate"],
        queries=len(correct),
        correct_at_1=float(correct.mean()),
        curve=curve,
    )
