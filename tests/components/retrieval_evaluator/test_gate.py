"""The blessing rule: each bound at, just inside and just outside it, in both directions."""

import pytest

from tfx_metric_learning.components.retrieval_evaluator import gate

E = 1e-6


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_candidate_metric_is_never_blessed(bad):
    good = {"map_at_r": 0.9, "eer": 0.1, "precision_at_1": 0.9}
    for name in good:
        candidate = dict(good, **{name: bad})
        blessed, reasons = gate.decide(candidate, None, {"map_at_r": 0.5}, "map_at_r", 0.0)
        assert blessed is False and f"candidate metric {name} is {bad!r}" in reasons[0]
    blessed, reasons = gate.decide({"eer": 0.1}, None, {"map_at_r": 0.5}, "map_at_r", 0.0)
    assert blessed is False and reasons == ["candidate metric map_at_r is missing"]
    with pytest.raises(ValueError, match="comparison_tolerance must be a finite number"):
        gate.decide(good, good, {}, "map_at_r", float("nan"))
    with pytest.raises(ValueError, match="map_at_r must be a finite number"):
        gate.decide(good, None, {"map_at_r": float("nan")}, "map_at_r", 0.0)


def test_baseline_with_a_non_finite_metric_leaves_the_thresholds_to_decide():
    good = {"map_at_r": 0.9}
    blessed, _ = gate.decide(good, {"map_at_r": float("nan")}, {"map_at_r": 0.5}, "map_at_r", 0)
    assert blessed is True
    blessed, _ = gate.decide(good, {"map_at_r": float("nan")}, {"map_at_r": 0.95}, "map_at_r", 0)
    assert blessed is False


def test_lift_over_follows_the_metric_direction():
    raw = {"a": {"map_at_r": 0.6, "eer": 0.2}, "b": {"map_at_r": 0.5, "eer": float("nan")}}
    assert gate.lift_over({"map_at_r": 0.7}, raw, "map_at_r") == (
        pytest.approx(0.1),
        "a",
    )
    # lower is better: a lower error than the best raw baseline is a positive lift
    assert gate.lift_over({"eer": 0.15}, raw, "eer") == (pytest.approx(0.05), "a")
    assert gate.lift_over({"eer": 0.15}, {"b": raw["b"]}, "eer") == (None, None)
    blessed, reasons = gate.decide(
        {"map_at_r": 0.55}, None, {}, "map_at_r", 0.0, raw=raw, min_lift_over_raw=0.0
    )
    assert blessed is False and "0.0500 worse than the a baseline's 0.6000" in reasons[0]
    with pytest.raises(ValueError, match="min_lift_over_raw must be a finite number"):
        gate.decide({"map_at_r": 0.55}, None, {}, "map_at_r", 0.0, raw, float("nan"))


# bounds are binary fractions, so "at the bound" is exact in floating point
@pytest.mark.parametrize("tolerance", [0.0, 0.125])
def test_production_is_kept_unless_the_candidate_is_within_the_tolerance(tolerance):
    base = {"map_at_r": 0.5}
    for delta, blessed in ((0.0, True), (-tolerance, True), (-tolerance - 0.001, False)):
        result, reasons = gate.decide({"map_at_r": 0.5 + delta}, base, {}, "map_at_r", tolerance)
        assert result is blessed, (delta, reasons)
    worse, reasons = gate.decide({"map_at_r": 0.25}, base, {}, "map_at_r", tolerance)
    assert worse is False and "worse than the baseline's 0.5000" in reasons[0]
    # lower is better: a higher error than production is worse
    lower = {"eer": 0.25}
    assert gate.decide({"eer": 0.25 + tolerance}, lower, {}, "eer", tolerance)[0] is True
    assert gate.decide({"eer": 0.25 + tolerance + 0.001}, lower, {}, "eer", tolerance)[0] is False
    assert gate.decide({"eer": 0.125}, lower, {}, "eer", tolerance)[0] is True


def test_thresholds_are_minimums_or_maximums_by_direction():
    for value, blessed in ((0.5 - E, False), (0.5, True), (0.5 + E, True)):
        assert (
            gate.decide({"map_at_r": value}, None, {"map_at_r": 0.5}, "map_at_r", 0)[0] is blessed
        )
    for value, blessed in ((0.125 - E, True), (0.125, True), (0.125 + E, False)):
        result = gate.decide({"eer": value, "map_at_r": 0.9}, None, {"eer": 0.125}, "map_at_r", 0)
        assert result[0] is blessed


@pytest.mark.parametrize("which", ["raw", "classic"])
def test_a_lift_below_its_minimum_refuses_and_at_it_blesses(which):
    baselines = {"a": {"map_at_r": 0.5}}
    for value, blessed in ((0.75 - 0.001, False), (0.75, True), (0.75 + 0.001, True)):
        kwargs = (
            {"raw": baselines, "min_lift_over_raw": 0.25}
            if which == "raw"
            else {"classic_metrics": baselines, "min_lift_over_classic": 0.25}
        )
        result, reasons = gate.decide({"map_at_r": value}, None, {}, "map_at_r", 0.0, **kwargs)
        assert result is blessed, (value, reasons)
        if not blessed:
            assert f"--min-lift-over-{which}" in reasons[0]
    # no minimum: the lift is reported, never required
    assert gate.decide({"map_at_r": 0.1}, None, {}, "map_at_r", 0.0, raw=baselines)[0] is True


def test_the_best_baseline_is_the_best_in_the_metric_direction():
    two = {"a": {"map_at_r": 0.6, "eer": 0.2}, "b": {"map_at_r": 0.5, "eer": 0.1}}
    assert gate.lift_over({"map_at_r": 0.7}, two, "map_at_r") == (pytest.approx(0.1), "a")
    assert gate.lift_over({"eer": 0.15}, two, "eer") == (pytest.approx(-0.05), "b")


def test_a_lift_within_rounding_of_zero_is_zero_and_one_at_the_rounding_is_kept():
    from tfx_metric_learning.components.retrieval_evaluator.settings import ROUNDING

    base = {"a": {"map_at_r": 0.0}}
    for inside in (ROUNDING / 2, -ROUNDING / 2):
        lift, best = gate.lift_over({"map_at_r": inside}, base, "map_at_r")
        assert (lift, best) == (0.0, "a") and str(lift) == "0.0"  # not -0.0, not a sign
    assert gate.lift_over({"map_at_r": ROUNDING}, base, "map_at_r") == (ROUNDING, "a")
    assert gate.lift_over({"map_at_r": -ROUNDING}, base, "map_at_r") == (-ROUNDING, "a")


@pytest.mark.parametrize(
    "value, how, separates",
    [
        (0.375, "0.1250 worse", "worse than"),
        (0.5, "only 0.0000 better", "barely better than"),
        (0.625, "only 0.1250 better", "barely better than"),
    ],
)
def test_a_refused_lift_is_named_worse_or_barely_better_by_its_sign(value, how, separates):
    baselines = {"a": {"map_at_r": 0.5}}
    _, (raw,) = gate.decide(
        {"map_at_r": value}, None, {}, "map_at_r", 0.0, raw=baselines, min_lift_over_raw=0.25
    )
    assert raw == (
        f"map_at_r {value:.4f} is {how} than the a baseline's 0.5000 (the inputs themselves, "
        f"cosine similarity): the model separates {separates} its own inputs "
        f"(--min-lift-over-raw 0.2500)"
    )
    _, (classic,) = gate.decide(
        {"map_at_r": value},
        None,
        {},
        "map_at_r",
        0.0,
        classic_metrics=baselines,
        min_lift_over_classic=0.25,
    )
    assert classic == (
        f"map_at_r {value:.4f} is {how} than the a baseline's 0.5000 (a linear map fit on the "
        f"train split) (--min-lift-over-classic 0.2500)"
    )
