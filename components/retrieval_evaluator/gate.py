"""The blessing rule: thresholds, the lift over the input and classic baselines, production.

``decide`` is what protects production: a candidate is blessed only when every threshold
holds, it separates at least ``min_lift_over_raw`` better than its own inputs (and
``min_lift_over_classic`` better than the classic baselines, when set), and it is not worse
than the production model by more than the tolerance. Metrics in ``LOWER_IS_BETTER`` are
compared the other way. Any metric that is not a finite number refuses the candidate.
"""

from __future__ import annotations

import math

from absl import logging

from tfx_metric_learning.components.retrieval_evaluator.settings import ROUNDING

LOWER_IS_BETTER = frozenset({"eer", "overlap"})


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def lift_over(
    candidate: dict[str, float], baselines: dict[str, dict[str, float]], metric: str
) -> tuple[float | None, str | None]:
    """``(lift, baseline name)``: ``metric`` of the candidate minus the best baseline's.

    ``baselines``: name -> metrics (the raw baselines, or the classic ones). The best one is
    the one with the better ``metric`` (the higher, or the lower for ``LOWER_IS_BETTER``
    metrics, where the lift is the baseline's value minus the candidate's, so a positive lift
    always means the model separates better than the baseline; a lift within ``ROUNDING`` of
    0 is 0). Baselines whose ``metric`` is not finite
    are left out; ``(None, None)`` when none is left or the candidate's is not finite.
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    usable = {name: m[metric] for name, m in baselines.items() if _finite(m.get(metric))}
    if not usable or not _finite(candidate.get(metric)):
        return None, None
    best = max(sorted(usable), key=lambda name: sign * usable[name])
    lift = sign * (candidate[metric] - usable[best])
    return (0.0 if abs(lift) < ROUNDING else lift), best


def decide(
    candidate: dict[str, float],
    baseline: dict[str, float] | None,
    thresholds: dict[str, float],
    comparison_metric: str,
    tolerance: float,
    raw: dict[str, dict[str, float]] | None = None,
    min_lift_over_raw: float | None = None,
    classic_metrics: dict[str, dict[str, float]] | None = None,
    min_lift_over_classic: float | None = None,
) -> tuple[bool, list[str]]:
    """``(blessed, reasons)``: every threshold holds, the raw inputs and the baseline are beaten.

    With ``raw`` (name -> metrics of the raw-feature baselines) and ``min_lift_over_raw``,
    the candidate's ``lift_over`` the raw baselines on the comparison metric must be at least
    ``min_lift_over_raw``; raw baselines whose metric is not finite cannot be compared with,
    and a warning says so. ``classic_metrics`` and ``min_lift_over_classic`` are the same rule
    against the classic baselines (PCA whitening, LDA: ``classic``).

    A threshold is a minimum for metrics where higher is better and a maximum for those
    where lower is better (``LOWER_IS_BETTER``: the equal error rate and the overlap); the
    comparison with the baseline follows the same direction.

    A candidate with any metric that is not a finite number (NaN, inf: a broken model) is
    never blessed, and neither is one missing a metric the decision reads; a comparison
    with NaN would otherwise be false and let it through. Thresholds and the tolerance must
    be finite (``EvaluationSettings`` refuses others before the run; checked again here). A
    baseline whose comparison metric is not finite cannot be compared with: the candidate
    is then judged by the thresholds alone, and the reason says so.
    """
    bounds = [*thresholds.items(), ("comparison_tolerance", tolerance)]
    if min_lift_over_raw is not None:
        bounds.append(("min_lift_over_raw", min_lift_over_raw))
    if min_lift_over_classic is not None:
        bounds.append(("min_lift_over_classic", min_lift_over_classic))
    for name, value in bounds:
        if not _finite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    broken = sorted(k for k, v in candidate.items() if not _finite(v))
    read = sorted({*thresholds, comparison_metric} - set(candidate))
    if broken or read:
        return False, [
            *(f"candidate metric {k} is {candidate[k]!r}, not a finite number" for k in broken),
            *(f"candidate metric {k} is missing" for k in read),
        ]
    reasons = []
    for name, bound in sorted(thresholds.items()):
        value = candidate[name]
        if name in LOWER_IS_BETTER and value > bound:
            reasons.append(f"{name} {value:.4f} is above the threshold {bound:.4f}")
        elif name not in LOWER_IS_BETTER and value < bound:
            reasons.append(f"{name} {value:.4f} is below the threshold {bound:.4f}")
    for kind, found, minimum in (
        ("raw", raw, min_lift_over_raw),
        ("classic", classic_metrics, min_lift_over_classic),
    ):
        if found and minimum is not None:
            reasons += _lift_reasons(candidate, found, comparison_metric, minimum, kind)
    if baseline is not None and not _finite(baseline.get(comparison_metric)):
        logging.warning(
            "the baseline's %s is %r: compared by the thresholds alone",
            comparison_metric,
            baseline.get(comparison_metric),
        )
    elif baseline is not None:
        cand, base = candidate[comparison_metric], baseline[comparison_metric]
        sign = -1.0 if comparison_metric in LOWER_IS_BETTER else 1.0
        if sign * (cand - base) < -tolerance:
            reasons.append(
                f"{comparison_metric} {cand:.4f} is worse than the baseline's {base:.4f} "
                f"(tolerance {tolerance:.4f})"
            )
    return not reasons, reasons


# how each kind of baseline is named in a refusal
_BASELINE_WORDS = {
    "raw": "the inputs themselves, cosine similarity",
    "classic": "a linear map fit on the train split",
}


def _lift_reasons(
    candidate: dict[str, float],
    baselines: dict[str, dict[str, float]],
    metric: str,
    minimum: float,
    kind: str,
) -> list[str]:
    """The refusal when the candidate's ``lift_over`` the ``kind`` baselines is below ``minimum``.

    None when it is not; a warning when no baseline's metric is finite.
    """
    lift, best = lift_over(candidate, baselines, metric)
    if lift is None:
        logging.warning("no %s baseline has a finite %s: the lift is not checked", kind, metric)
        return []
    if lift >= minimum:
        return []
    how = f"{-lift:.4f} worse" if lift < 0 else f"only {lift:.4f} better"
    words = f" ({_BASELINE_WORDS[kind]})"
    if kind == "raw":
        words += (
            f": the model separates {'worse than' if lift < 0 else 'barely better than'} "
            f"its own inputs"
        )
    return [
        f"{metric} {candidate[metric]:.4f} is {how} than the {best} baseline's "
        f"{baselines[best][metric]:.4f}{words} (--min-lift-over-{kind} {minimum:.4f})"
    ]
