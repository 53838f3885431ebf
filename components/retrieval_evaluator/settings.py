"""The evaluation stage's settings: what is measured and what a model must reach to be blessed."""

from __future__ import annotations

import dataclasses

from components.retrieval_evaluator import metrics as metrics_lib
from trainer_module.stage_settings import (
    StageSettings,
    at_least,
    each,
    non_negative,
    seed_setting,
    setting,
)

# Metrics that are not confined to [0, 1] (every other one is a rate or a score in [0, 1]).
UNBOUNDED_METRICS = frozenset({"separation"})


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
    recall_at_k: list[int] = setting([1, 5, 10], "k values of Recall@k", each(at_least(1)))
    seed: int = seed_setting()
    split: str = setting("eval", "split scored leave-one-out", cli=False)
    query_split: str = setting("", "queries of this split against gallery_split", cli=False)
    gallery_split: str = setting("", "the gallery for query_split", cli=False)

    def _checks(self) -> list[str]:
        found = []
        if not self.recall_at_k:
            found.append("recall_at_k must hold at least one k")
        known = metrics_lib.metric_names(self.recall_at_k or [1])
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
        return metrics_lib.metric_names(self.recall_at_k)
