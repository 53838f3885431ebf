"""Classic linear metric learning as baselines: PCA whitening and regularised LDA.

A learned embedding should separate classes better than its inputs (the raw baselines) and
better than the linear methods that have done so since 1936. Both are fit on the transformed
features (``transform_features``, the vector the encoder reads) of the train split, their
size chosen on the valid split, and applied to the eval split as ``x -> (x - mean) W``,
compared under the same cosine similarity as every model:

- ``pca_whitened``: scikit-learn's ``PCA(whiten=True)``: the top ``d`` principal directions,
  each scaled to unit variance; ``d`` from ``DIMS``.
- ``lda``: scikit-learn's ``LinearDiscriminantAnalysis(solver="eigen", shrinkage=s)``: the
  directions that maximise between-class over within-class variance, the within-class
  covariance shrunk towards a multiple of the identity by ``s`` (Ledoit-Wolf's form); the
  first ``d`` of them (at most classes - 1); ``s`` from ``SHRINKAGES``, ``d`` from ``DIMS``.

Selection: every candidate size (and shrinkage) is scored by MAP@R on the valid split
(leave-one-out, cosine); the best is kept, ties to the smaller. Without a valid split the
defaults ``DEFAULT_DIM`` and ``DEFAULT_SHRINKAGE`` are taken and the record says so. At most
``max_rows`` train rows (the seeded sample the evaluator takes) are used to fit: the fit is
``O(rows F^2 + F^3)``.

Only the selection loop is ours; the fits are scikit-learn's.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from tfx_metric_learning.core.retrieval.metrics import retrieval_metrics

PCA_WHITENED, LDA = "pca_whitened", "lda"
CLASSIC_BASELINES = (PCA_WHITENED, LDA)
DIMS = (8, 16, 32, 64, 128)
SHRINKAGES = (0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9)
DEFAULT_DIM = 64
DEFAULT_SHRINKAGE = 0.5
SELECTION_METRIC = "map_at_r"


@dataclasses.dataclass
class LinearMap:
    """``x -> (x - mean) @ matrix``; ``params`` as chosen, ``valid_score`` their MAP@R."""

    name: str
    mean: np.ndarray
    matrix: np.ndarray
    params: dict
    valid_score: float | None

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) @ self.matrix).astype(np.float32)

    def describe(self) -> dict:
        return {"params": self.params, "valid_map_at_r": self.valid_score}


def _valid_score(projected: np.ndarray, labels: np.ndarray) -> float:
    value = retrieval_metrics(projected, labels, recall_at_k=[1])[SELECTION_METRIC]
    return float(value) if np.isfinite(value) else -np.inf


def _dims(limit: int) -> list[int]:
    """The sizes of ``DIMS`` below ``limit``, and ``limit`` itself when none is."""
    return [d for d in DIMS if d < limit] or [limit]


def fit_pca_whitened(
    train_x: np.ndarray, valid: tuple[np.ndarray, np.ndarray] | None, seed: int = 0
) -> LinearMap:
    """PCA whitening of ``train_x``, its size chosen on ``valid`` (see the module doc)."""
    limit = min(train_x.shape[0], train_x.shape[1])
    dims = _dims(limit)
    pca = PCA(n_components=max(dims), whiten=True, random_state=seed).fit(train_x)
    std = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    full = pca.components_.T / std  # [F, max dims]
    if valid is None:
        d = min(DEFAULT_DIM, max(dims))
        return LinearMap(PCA_WHITENED, pca.mean_, full[:, :d], {"dim": d}, None)
    vx = valid[0] - pca.mean_
    scores = {d: _valid_score(vx @ full[:, :d], valid[1]) for d in dims}
    d = max(dims, key=lambda k: (scores[k], -k))
    return LinearMap(PCA_WHITENED, pca.mean_, full[:, :d], {"dim": d}, scores[d])


def fit_lda(
    train_x: np.ndarray, train_y: np.ndarray, valid: tuple[np.ndarray, np.ndarray] | None
) -> LinearMap:
    """Regularised LDA of ``train_x``, shrinkage and size chosen on ``valid``."""
    classes = len(np.unique(train_y))
    if classes < 2:
        raise ValueError(f"LDA needs 2 classes in the train split, got {classes}")
    limit = min(classes - 1, train_x.shape[1])
    dims = _dims(limit)
    mean = train_x.mean(axis=0)
    shrinkages = SHRINKAGES if valid is not None else (DEFAULT_SHRINKAGE,)
    best = None
    for s in shrinkages:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # collinear features: shrinkage is the remedy
            lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=s).fit(train_x, train_y)
        full = lda.scalings_[:, :limit]
        if valid is None:
            d = min(DEFAULT_DIM, limit)
            return LinearMap(LDA, mean, full[:, :d], {"dim": d, "shrinkage": s}, None)
        vx = valid[0] - mean
        for d in dims:
            score = _valid_score(vx @ full[:, :d], valid[1])
            if best is None or score > best[0]:
                best = (score, d, s, full[:, :d])
    score, d, s, matrix = best
    return LinearMap(LDA, mean, matrix, {"dim": d, "shrinkage": s}, score)


def fit_classic(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray] | None,
    seed: int = 0,
) -> dict[str, LinearMap]:
    """Both baselines, fit on ``train`` ``(features, labels)``, chosen on ``valid``."""
    x, y = np.asarray(train[0], np.float64), np.asarray(train[1])
    if valid is not None:
        valid = (np.asarray(valid[0], np.float64), np.asarray(valid[1]))
    return {PCA_WHITENED: fit_pca_whitened(x, valid, seed), LDA: fit_lda(x, y, valid)}
