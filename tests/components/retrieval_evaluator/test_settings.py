"""Evaluation settings: metric names, ranges and finiteness are checked before any run."""

import math

import pytest

from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.core.stage_settings import SettingsError


@pytest.mark.parametrize(
    "values, message",
    [
        ({"thresholds": {"accuracy": 0.5}}, "unknown metric 'accuracy'; valid: precision_at_1"),
        ({"thresholds": {"map_at_r": 2.0}}, r"threshold map_at_r=2.0 is outside \[0, 1\]"),
        ({"thresholds": {"map_at_r": math.nan}}, "must be an object of finite numbers"),
        ({"thresholds": {"map_at_r": "abc"}}, "must be an object of finite numbers"),
        ({"comparison_tolerance": math.nan}, "'comparison_tolerance' must be a finite number"),
        ({"comparison_tolerance": -0.1}, "'comparison_tolerance' must be a finite number >= 0"),
        ({"recall_at_k": []}, "recall_at_k must hold at least one k"),
        ({"thresholds": {"recall_at_20": 0.5}}, "unknown metric 'recall_at_20'"),
        ({"query_split": "q"}, "set both query_split and gallery_split"),
    ],
)
def test_bad_evaluation_settings_are_refused(values, message):
    with pytest.raises(SettingsError, match=message):
        EvaluationSettings.from_dict(values)


def test_unbounded_metric_and_k_dependent_names_are_accepted():
    settings = EvaluationSettings.from_dict(
        {"thresholds": {"separation": 3.5, "recall_at_20": 0.9}, "recall_at_k": [1, 20]}
    )
    assert "recall_at_20" in settings.metric_names
