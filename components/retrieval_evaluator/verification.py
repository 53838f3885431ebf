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

``nmi``: k-means (k = number of classes, fixed seed) on the embeddings, scored against the
labels with normalised mutual information, I(Y; C) / ((H(Y) + H(C)) / 2).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from trainer_module.retrieval.search import normalise

METRICS = ("roc_auc", "eer", "separation", "overlap")
MAX_PAIRS = 2_000_000
HIST_BINS = 100
MAX_KMEANS_POINTS = 50_000


def pair_distances(
    embeddings: np.ndarray, labels, max_pairs: int = MAX_PAIRS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances of ``(same-class pairs, different-class pairs)``."""
    x = normalise(embeddings).astype(np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        d = 1.0 - np.einsum("ij,ij->i", x[i], x[j])
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
        a, b = order[starts[cls] + a_pos], order[starts[cls] + b_pos]
        same_d = 1.0 - np.einsum("ij,ij->i", x[a], x[b])
    diff = []
    while sum(len(d) for d in diff) < max_pairs:
        a, b = rng.integers(n, size=max_pairs), rng.integers(n, size=max_pairs)
        keep = inverse[a] != inverse[b]
        diff.append(1.0 - np.einsum("ij,ij->i", x[a[keep]], x[b[keep]]))
    return same_d, np.concatenate(diff)[:max_pairs]


def roc_auc(same: np.ndarray, diff: np.ndarray) -> float:
    """P(a same-class pair is closer than a different-class pair), ties counting 1/2."""
    ranks = rankdata(np.concatenate([same, diff]))
    n_s, n_d = len(same), len(diff)
    u = ranks[n_s:].sum() - n_d * (n_d + 1) / 2  # different pairs ranked above same pairs
    return float(u / (n_s * n_d))


def equal_error_rate(same: np.ndarray, diff: np.ndarray) -> float:
    """(FAR + FRR) / 2 at the observed threshold where FAR and FRR are closest."""
    thresholds = np.unique(np.concatenate([same, diff]))
    far = np.searchsorted(np.sort(diff), thresholds, side="right") / len(diff)
    frr = 1.0 - np.searchsorted(np.sort(same), thresholds, side="right") / len(same)
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
    return {
        "roc_auc": roc_auc(same, diff),
        "eer": equal_error_rate(same, diff),
        "separation": separation(same, diff),
        "overlap": overlap(same, diff),
        "same_class_pairs": int(len(same)),
        "different_class_pairs": int(len(diff)),
        "mean_same_class_distance": float(same.mean()),
        "mean_different_class_distance": float(diff.mean()),
    }


def nmi(labels, clusters) -> float:
    """Normalised mutual information I(Y; C) / ((H(Y) + H(C)) / 2)."""
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    _, c = np.unique(np.asarray(clusters), return_inverse=True)
    n = len(y)
    joint = np.zeros((y.max() + 1, c.max() + 1))
    np.add.at(joint, (y, c), 1.0)
    p = joint / n
    py, pc = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(py, pc)[nz])).sum())
    h_y = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    h_c = float(-(pc[pc > 0] * np.log(pc[pc > 0])).sum())
    denominator = (h_y + h_c) / 2
    return mi / denominator if denominator > 0 else 1.0


def cluster_nmi(embeddings: np.ndarray, labels, seed: int = 0) -> float:
    """NMI of k-means (k = number of classes) against the labels.

    Above ``MAX_KMEANS_POINTS`` points, k-means runs on a fixed-seed sample of that size.
    """
    from sklearn.cluster import KMeans

    labels = np.asarray(labels)
    x = normalise(embeddings)
    if len(x) > MAX_KMEANS_POINTS:
        keep = np.random.default_rng(seed).choice(len(x), MAX_KMEANS_POINTS, replace=False)
        x, labels = x[keep], labels[keep]
    k = len(np.unique(labels))
    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    return nmi(labels, clusters)
