"""Verification and clustering metrics: how well distances separate same- from other-class pairs.

Distances are cosine distances ``1 - cos`` of the embeddings. Over same-class pairs ``S`` and
different-class pairs ``D`` (every unordered pair when there are at most ``max_pairs`` of
them, otherwise ``max_pairs`` of each drawn uniformly with a fixed seed):

- ``roc_auc``: P(d_s < d_d) + P(d_s = d_d) / 2 for a random s in S, d in D (Mann-Whitney);
- ``eer``: the equal error rate, where the false accept rate FAR(t) = #{d in D: d <= t}/|D|
  meets the false reject rate FRR(t) = #{s in S: s > t}/|S|, over thresholds t at the
  observed distances; reported as (FAR + FRR) / 2 at the t that minimises |FAR - FRR|;
- ``separation``: (mean(D) - mean(S)) / sqrt((var(S) + var(D)) / 2), the gap between the two
  distance distributions in pooled standard deviations (d');
- ``overlap``: the overlapping coefficient, sum_b min(p_S(b), p_D(b)) of the two normalised
  histograms over 100 equal bins of [0, 2] (0 = fully separated, 1 = identical).

``nmi``: k-means (k = number of classes, fixed seed; faiss's) on the embeddings, scored against
the labels with normalised mutual information, I(Y; C) / ((H(Y) + H(C)) / 2).

ROC AUC, the EER's ROC curve and NMI are scikit-learn's; separation and overlap are written
here (a mean, a variance and two histograms; no library names them).
"""

from __future__ import annotations

import math

import numpy as np

from tfx_metric_learning.core.retrieval.search import normalise

METRICS = ("roc_auc", "eer", "separation", "overlap")
MAX_PAIRS = 2_000_000
PAIR_CHUNK = 65536  # pairs gathered at a time
HIST_BINS = 100
MAX_KMEANS_POINTS = 50_000
KMEANS_ITERATIONS = 20
KMEANS_RESTARTS = 4


def _distances(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distances of the pairs ``(a[i], b[i])`` of unit rows, ``PAIR_CHUNK`` at a time."""
    out = np.empty(len(a))
    for s in range(0, len(a), PAIR_CHUNK):
        pa, pb = x[a[s : s + PAIR_CHUNK]], x[b[s : s + PAIR_CHUNK]]
        out[s : s + PAIR_CHUNK] = 1.0 - np.einsum("ij,ij->i", pa, pb, dtype=np.float64)
    return out


def pair_distances(
    embeddings: np.ndarray, labels, max_pairs: int = MAX_PAIRS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances of ``(same-class pairs, different-class pairs)``.

    The unit vectors are float32; each dot product is accumulated in float64.
    """
    x = normalise(embeddings)
    labels = np.asarray(labels)
    n = len(labels)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        d = _distances(x, i, j)
        same = labels[i] == labels[j]
        return d[same], d[~same]
    rng = np.random.default_rng(seed)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")  # members of each class, contiguous
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    weights = counts * (counts - 1.0)  # ordered same-class pairs per class
    same_d = np.empty(0)
    if weights.sum() > 0:
        cls = rng.choice(len(counts), size=max_pairs, p=weights / weights.sum())
        a_pos = rng.integers(0, counts[cls])
        b_pos = rng.integers(0, counts[cls] - 1)
        b_pos = b_pos + (b_pos >= a_pos)  # never the same item
        same_d = _distances(x, order[starts[cls] + a_pos], order[starts[cls] + b_pos])
    diff = []
    while sum(len(d) for d in diff) < max_pairs:
        a, b = rng.integers(n, size=max_pairs), rng.integers(n, size=max_pairs)
        keep = inverse[a] != inverse[b]
        diff.append(_distances(x, a[keep], b[keep]))
    return same_d, np.concatenate(diff)[:max_pairs]


def _scores(same: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (1 = same class) and scores (minus the distance) for scikit-learn's ROC tools."""
    truth = np.concatenate([np.ones(len(same)), np.zeros(len(diff))])
    return truth, -np.concatenate([same, diff])


def _roc(same: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``roc_curve`` at every observed distance: ``(far, tpr)``.

    Its first point, the threshold above every score (FAR = TPR = 0), included.
    """
    from sklearn.metrics import roc_curve

    far, tpr, _ = roc_curve(*_scores(same, diff), drop_intermediate=False)
    return far, tpr


def roc_auc(same: np.ndarray, diff: np.ndarray, roc=None) -> float:
    """P(a same-class pair is closer than a different-class pair), ties counting 1/2.

    The trapezoids under scikit-learn's ROC curve (``sklearn.metrics.auc`` of ``roc_curve``,
    what its ``roc_auc_score`` computes), which is this Mann-Whitney probability with ties
    counting 1/2. ``roc``: ``_roc(same, diff)`` when already computed.
    """
    from sklearn.metrics import auc

    far, tpr = roc if roc is not None else _roc(same, diff)
    return float(auc(far, tpr))


def equal_error_rate(same: np.ndarray, diff: np.ndarray, roc=None) -> float:
    """(FAR + FRR) / 2 at the observed threshold where FAR and FRR are closest.

    scikit-learn's ``roc_curve`` at every observed distance: FAR = its false positive rate,
    FRR = 1 - its true positive rate (its first point, the threshold above every score,
    is no observed distance and is left out). ``roc``: ``_roc(same, diff)`` when already
    computed.
    """
    far, tpr = roc if roc is not None else _roc(same, diff)
    far, frr = far[1:], 1.0 - tpr[1:]
    best = np.argmin(np.abs(far - frr))
    return float((far[best] + frr[best]) / 2)


def separation(same: np.ndarray, diff: np.ndarray) -> float:
    """Gap between the mean distances in pooled standard deviations."""
    pooled = math.sqrt((same.var() + diff.var()) / 2)
    gap = diff.mean() - same.mean()
    return float(gap / pooled) if pooled > 0 else (math.inf if gap > 0 else 0.0)


def overlap(same: np.ndarray, diff: np.ndarray, bins: int = HIST_BINS) -> float:
    """Overlapping coefficient of the two distance histograms over [0, 2]."""
    edges = np.linspace(0.0, 2.0, bins + 1)
    h_s = np.histogram(np.clip(same, 0, 2), edges)[0] / len(same)
    h_d = np.histogram(np.clip(diff, 0, 2), edges)[0] / len(diff)
    return float(np.minimum(h_s, h_d).sum())


def verification_metrics(embeddings: np.ndarray, labels, max_pairs: int = MAX_PAIRS) -> dict:
    """ROC AUC, EER, separation and overlap (see the module doc), plus the pair counts."""
    return summarise_pairs(*pair_distances(embeddings, labels, max_pairs))


def summarise_pairs(same: np.ndarray, diff: np.ndarray) -> dict:
    """The verification metrics of given same-class and different-class distances."""
    if len(same) == 0 or len(diff) == 0:
        raise ValueError("verification metrics need same-class and different-class pairs")
    roc = _roc(same, diff)  # one sort of the pairs for both
    return {
        "roc_auc": roc_auc(same, diff, roc),
        "eer": equal_error_rate(same, diff, roc),
        "separation": separation(same, diff),
        "overlap": overlap(same, diff),
        "same_class_pairs": int(len(same)),
        "different_class_pairs": int(len(diff)),
        "mean_same_class_distance": float(same.mean()),
        "mean_different_class_distance": float(diff.mean()),
    }


def nmi(labels, clusters) -> float:
    """Normalised mutual information I(Y; C) / ((H(Y) + H(C)) / 2) (scikit-learn's, arithmetic)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels, clusters, average_method="arithmetic"))


def cluster_nmi(embeddings: np.ndarray, labels, seed: int = 0) -> float:
    """NMI of k-means (k = number of classes) against the labels.

    k-means is faiss's (``faiss.Kmeans``, as pytorch-metric-learning's NMI runs it):
    ``KMEANS_ITERATIONS`` Lloyd iterations from ``KMEANS_RESTARTS`` seeded starts, the best
    objective kept, on the L2-normalised embeddings. scikit-learn's ``KMeans`` gives the same
    kind of clustering, but ran 4-7x slower here at 1,000 classes and 50,000 points. Above
    ``MAX_KMEANS_POINTS`` points, k-means runs on a fixed-seed sample of that size.
    """
    import faiss

    labels = np.asarray(labels)
    x = normalise(embeddings)
    if len(x) > MAX_KMEANS_POINTS:
        keep = np.random.default_rng(seed).choice(len(x), MAX_KMEANS_POINTS, replace=False)
        x, labels = x[keep], labels[keep]
    k = len(np.unique(labels))
    kmeans = faiss.Kmeans(
        x.shape[1],
        k,
        niter=KMEANS_ITERATIONS,
        nredo=KMEANS_RESTARTS,
        seed=seed,
        min_points_per_centroid=1,
        max_points_per_centroid=len(x),
        verbose=False,
    )
    kmeans.train(x)
    clusters = kmeans.index.search(x, 1)[1][:, 0]
    return nmi(labels, clusters)
