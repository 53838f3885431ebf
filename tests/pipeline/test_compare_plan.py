"""The comparison plan: its cap, its estimate, its line; the components of real pipelines."""

import pytest

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.pipeline import compare_plan


def test_the_cap_is_inclusive_and_names_the_product_and_the_flag():
    assert compare_plan.check_cap(7, 3, 2, 42) == 42
    with pytest.raises(SettingsError, match=r"43 branches \(43 candidate\(s\) x 1 seed"):
        compare_plan.check_cap(43, 1, 1, 42)
    with pytest.raises(SettingsError, match="--max-branches must be >= 1"):
        compare_plan.check_cap(1, 1, 1, 0)
    # the default comparison (7 candidates x 3 seeds x 2 protocols) fits the default cap
    assert compare_plan.check_cap(7, 3, 2, compare_plan.MAX_BRANCHES) == 42


def test_the_estimate_reproduces_its_measurement_and_scales_with_rows_and_epochs():
    def plan(rows, epochs, trials=0, protocols=1):
        return compare_plan.ComparePlan(
            candidates=7,
            seeds=3,
            tuning_trials=trials,
            components=0,
            train_rows=[rows] * protocols,
            epochs=[epochs] * 7,
        )

    measured = plan(1008, 20)  # the seen_classes comparison in docs/compare.md: 703 s
    assert measured.estimated_seconds == pytest.approx(703.0)
    assert plan(1008, 20, protocols=2).estimated_seconds == pytest.approx(1406.0)
    bigger = plan(10080, 20).estimated_seconds - 21 * compare_plan.FIXED_BRANCH_SECONDS
    base = measured.estimated_seconds - 21 * compare_plan.FIXED_BRANCH_SECONDS
    assert bigger == pytest.approx(10 * base)
    assert plan(1008, 20, trials=4).estimated_seconds > measured.estimated_seconds
    line = plan(1008, 20).describe(64)
    assert line.startswith("Plan: 7 candidate(s) x 3 seed(s) x 1 protocol(s) = 21 branches")
    assert "estimated 12 min (1008 train rows x 20 epochs" in line and "--max-branches 64" in line
