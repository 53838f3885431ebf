"""The evaluation stage's settings: what is measured and what a model must reach to be blessed."""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.components.retrieval_evaluator import verification
from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    any_number,
    at_least,
    boolean,
    each,
    non_negative,
    seed_setting,
    setting,
)


def metric_names(recall_at_k: list[int] | tuple[int, ...] = (1, 5, 10)) -> list[str]:
    """Names of every metric the evaluator reports for these k (thresholds may use any)."""
    return [
        "precision_at_1",
        *[f"recall_at_{k}" for k in sorted(set(recall_at_k))],
        "r_precision",
        "map_at_r",
        "nmi",
        *verification.METRICS,
    ]


# metric differences below this are summation-order rounding, not a difference
ROUNDING = 1e-9

# Metrics that are not confined to [0, 1] (every other one is a rate or a score in [0, 1]).
UNBOUNDED_METRICS = frozenset({"separation"})


# Queries scored by default: a split of up to this many rows is scored whole; a larger one by
# a seeded sample of this many queries, each searching the whole split, so the search grows
# linearly with the split (this many x its rows) instead of with its square. At 20,000 queries
# of 60,000 rows, MAP@R's 95% sampling error measured +-0.0014 (at MAP@R 0.87) and +-0.0022
# (at 0.30) on 200 synthetic classes; every sampled metric reports its own.
DEFAULT_MAX_QUERIES = 20_000


@dataclasses.dataclass(frozen=True)
class EvaluationSettings(StageSettings):
    """Settings of the RetrievalEvaluator (one ``settings`` execution property)."""

    STAGE = "evaluation"

    thresholds: dict[str, float] = setting(
        {"map_at_r": 0.5},
        "bound a model must reach to be blessed (repeatable; a minimum, a maximum for eer and "
        "overlap); giving any replaces the default",
        flag="--threshold",
        metavar="METRIC=VALUE",
    )
    comparison_metric: str = setting(
        "map_at_r", "metric compared with the blessed baseline", cli=False
    )
    comparison_tolerance: float = setting(
        0.0,
        "how much worse than the blessed baseline's comparison metric a model may be",
        non_negative,
        flag="--tolerance",
    )
    min_lift_over_raw: float = setting(
        0.0,
        "how much better than the raw-feature baselines (the inputs themselves, cosine) a model's "
        "comparison metric must be to be blessed; 0 refuses a model that separates worse than "
        "its inputs, a negative value tolerates that much less",
        any_number,
    )
    classic_baselines: bool = setting(
        True,
        "also score PCA whitening and regularised LDA, fit on the train split and sized on the "
        "valid split (classic.py), as baselines beside the raw features",
        boolean,
    )
    classic_fit_rows: int = setting(
        20000,
        "fit the classic baselines on at most this many train rows (a seeded sample)",
        at_least(2),
        cli=False,
    )
    min_lift_over_classic: float | None = setting(
        None,
        "how much better than the best classic baseline (PCA whitening, LDA) a model's "
        "comparison metric must be to be blessed; unset: reported, not required",
        any_number,
    )
    recall_at_k: list[int] = setting([1, 5, 10], "k values of Recall@k", each(at_least(1)))
    max_eval_queries: int = setting(
        DEFAULT_MAX_QUERIES,
        "score at most this many queries, a seeded uniform sample of the query split, each "
        "searching the whole gallery; the metrics then carry their sampling error (95 percent "
        "interval half-width; 0: every row is a query, a cost that grows with the square of "
        "the split)",
        non_negative,
    )
    seed: int = seed_setting()
    split: str = setting("eval", "split scored leave-one-out", cli=False)
    query_split: str = setting("", "queries of this split against gallery_split", cli=False)
    gallery_split: str = setting("", "the gallery for query_split", cli=False)

    def _checks(self) -> list[str]:
        found = []
        if not self.recall_at_k:
            found.append("recall_at_k must hold at least one k")
        known = metric_names(self.recall_at_k or [1])
        for name in [*self.thresholds, self.comparison_metric]:
            if name not in known:
                found.append(f"unknown metric {name!r}; valid: {', '.join(known)}")
        for name, bound in sorted(self.thresholds.items()):
            if name in known and name not in UNBOUNDED_METRICS and not 0 <= bound <= 1:
                found.append(f"threshold {name}={bound} is outside [0, 1], the metric's range")
        if bool(self.query_split) != bool(self.gallery_split):
            found.append("set both query_split and gallery_split, or neither")
        return found

    @property
    def metric_names(self) -> list[str]:
        """Every metric reported with these k."""
        return metric_names(self.recall_at_k)
