"""Our preprocessing_fn keeps the pipeline's Transform contract, with no training/serving skew."""

import numpy as np

from acme_embeddings.preprocessing import BUCKETS, preprocessing_fn
from tfx_metric_learning.testing import check_preprocessing_fn


def test_quantile_features_on_digits(digits_csv_file):
    report = check_preprocessing_fn(preprocessing_fn, digits_csv_file)
    assert report["features"] == 64 and report["vocabulary_size"] == 10
    assert report["max_skew"] == 0.0


def test_quantile_features_on_many_classes_with_missing_values(many_class_csv_file):
    rows = [dict(r) for r in _rows(many_class_csv_file)]
    rows[0]["f000"] = float("nan")
    report = check_preprocessing_fn(preprocessing_fn, rows)
    assert report["features"] == 16 and report["vocabulary_size"] == 40


def test_every_feature_is_a_centred_quantile(tmp_path, many_class_csv_file):
    from tfx_metric_learning.testing.preprocessing import analyze_and_transform

    rows = _rows(many_class_csv_file)
    out = analyze_and_transform(preprocessing_fn, rows, str(tmp_path / "graph"))
    features = np.stack([r["features"] for r in out])
    assert features.min() >= -0.5 and features.max() <= 0.5
    assert len(np.unique(features[:, 0])) <= BUCKETS


def _rows(path):
    from tfx_metric_learning.testing.preprocessing import read_rows

    return read_rows(path, "label")
