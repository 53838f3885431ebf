"""Classic baselines: LDA finds the discriminative directions PCA and the inputs miss."""

import numpy as np
import pytest

from tfx_metric_learning.components.retrieval_evaluator import classic
from tfx_metric_learning.core.retrieval.metrics import retrieval_metrics


def _data(seed, classes=30, per_class=12, noise_dims=20):
    """Classes apart in 4 low-variance dimensions, hidden by 20 loud noise dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (classes, 4))
    labels = np.repeat(np.arange(classes), per_class)
    signal = centres[labels] + rng.normal(0, 0.3, (len(labels), 4))
    noise = rng.normal(0, 10.0, (len(labels), noise_dims))
    return np.hstack([signal, noise]), labels.astype(str)


def _mapr(x, y):
    return retrieval_metrics(x, y, recall_at_k=[1])["map_at_r"]


def test_lda_beats_the_inputs_and_pca_on_classes_it_never_saw():
    train, valid, test = _data(0), _data(1), _data(2)  # other classes in each
    maps = classic.fit_classic(train, valid)
    raw = _mapr(*test)
    lda = _mapr(maps[classic.LDA].apply(test[0]), test[1])
    pca = _mapr(maps[classic.PCA_WHITENED].apply(test[0]), test[1])
    assert lda > 2 * raw and lda > 2 * pca, (raw, pca, lda)
    chosen = maps[classic.LDA].params
    assert chosen["dim"] in classic.DIMS and chosen["shrinkage"] in classic.SHRINKAGES
    assert maps[classic.LDA].valid_score == pytest.approx(
        _mapr(maps[classic.LDA].apply(valid[0]), valid[1])
    )


def test_sizes_are_bounded_by_the_classes_and_features_and_defaults_without_valid():
    x, y = _data(0, classes=5)
    maps = classic.fit_classic((x, y), None)
    assert maps[classic.LDA].matrix.shape == (24, 4)  # classes - 1
    assert maps[classic.LDA].params == {"dim": 4, "shrinkage": classic.DEFAULT_SHRINKAGE}
    assert maps[classic.LDA].valid_score is None
    assert maps[classic.PCA_WHITENED].matrix.shape == (24, 16)  # the largest size below 24
    whitened = maps[classic.PCA_WHITENED].apply(x)
    np.testing.assert_allclose(whitened.std(axis=0, ddof=1), 1.0, rtol=1e-3)
    with pytest.raises(ValueError, match="LDA needs 2 classes"):
        classic.fit_lda(x, np.zeros(len(x)), None)
