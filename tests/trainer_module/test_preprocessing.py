import math

import numpy as np
import pytest

from tests.transform_helpers import analyze_and_transform


def test_missing_values_are_mean_imputed_and_features_z_scored(tmp_path):
    rows = [
        {"a": 1.0, "b": 10.0, "label": "x"},
        {"a": 3.0, "b": math.nan, "label": "y"},
        {"a": math.nan, "b": 30.0, "label": "x"},
        {"a": 5.0, "b": 20.0, "label": "z"},
    ]
    out = analyze_and_transform(rows, ["a", "b"], str(tmp_path / "tf"))
    feats = np.stack([r["features"] for r in out])
    a_present = np.array([1.0, 3.0, 5.0])
    b_present = np.array([10.0, 30.0, 20.0])
    expected_a = (np.array([1.0, 3.0, a_present.mean(), 5.0]) - a_present.mean()) / a_present.std()
    expected_b = (
        np.array([10.0, b_present.mean(), 30.0, 20.0]) - b_present.mean()
    ) / b_present.std()
    np.testing.assert_allclose(feats[:, 0], expected_a, atol=1e-5)
    np.testing.assert_allclose(feats[:, 1], expected_b, atol=1e-5)
    assert [int(r["missing_count"]) for r in out] == [0, 1, 1, 0]
    assert [r["label"] for r in out] == [b"x", b"y", b"x", b"z"]
    ids = [int(r["label_id"]) for r in out]
    assert ids[0] == ids[2] and len(set(ids)) == 3 and min(ids) >= 0


def test_constant_feature_becomes_zero_not_nan(tmp_path):
    rows = [{"a": 2.0, "b": float(i), "label": str(i % 2)} for i in range(4)]
    out = analyze_and_transform(rows, ["a", "b"], str(tmp_path / "tf"))
    feats = np.stack([r["features"] for r in out])
    assert np.all(np.isfinite(feats)) and np.all(feats[:, 0] == 0.0)
    assert feats[:, 1] == pytest.approx((np.arange(4) - 1.5) / np.arange(4).std(), abs=1e-5)


def test_centered_scaling_keeps_the_features_relative_weight(tmp_path):
    rows = [
        {"a": 1.0, "b": 10.0, "label": "x"},
        {"a": 3.0, "b": math.nan, "label": "y"},
        {"a": 5.0, "b": 30.0, "label": "x"},
        {"a": 7.0, "b": 20.0, "label": "z"},
    ]
    out = analyze_and_transform(rows, ["a", "b"], str(tmp_path / "tf"), scaling="centered")
    feats = np.stack([r["features"] for r in out])
    a = np.array([1.0, 3.0, 5.0, 7.0])
    b_present = np.array([10.0, 30.0, 20.0])
    # one scale for every feature: the root mean of the features' (present-value) variances
    scale = math.sqrt((a.var() + b_present.var()) / 2)
    np.testing.assert_allclose(feats[:, 0], (a - a.mean()) / scale, atol=1e-5)
    b = np.array([10.0, b_present.mean(), 30.0, 20.0])
    np.testing.assert_allclose(feats[:, 1], (b - b_present.mean()) / scale, atol=1e-5)
    assert feats[1, 1] == 0.0  # the missing value, mean-imputed


def test_an_unknown_scaling_is_refused_naming_the_setting(tmp_path):
    rows = [{"a": float(i), "label": str(i % 2)} for i in range(4)]
    with pytest.raises(
        Exception,
        match="transform setting 'scaling' must be one of standard, centered, got 'minmax'",
    ):
        analyze_and_transform(rows, ["a"], str(tmp_path / "tf"), scaling="minmax")
