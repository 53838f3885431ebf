"""The ingest stage's settings: the label column, the evaluation protocol, bad-row tolerance."""

from __future__ import annotations

import dataclasses

from components.example_gen import rows
from trainer_module.stage_settings import (
    StageSettings,
    closed_fraction,
    one_of,
    open_fraction,
    seed_setting,
    setting,
)

PROTOCOLS = ("seen_classes", "unseen_classes")


@dataclasses.dataclass(frozen=True)
class IngestSettings(StageSettings):
    """Settings of the validating ExampleGen (packed into its ``custom_config``)."""

    STAGE = "ingest"

    label_column: str = setting("label", "name of the label column")
    protocol: str = setting(
        "seen_classes",
        "seen_classes: stratified split of every class; unseen_classes: evaluate on classes "
        "never trained on",
        one_of(*PROTOCOLS),
    )
    eval_fraction: float = setting(
        0.3, "seen_classes: share of every class held out for evaluation", open_fraction
    )
    eval_classes: list[str] | None = setting(
        None,
        "unseen_classes: comma-separated held-out classes (default: the upper half of the "
        "sorted classes)",
    )
    max_bad_row_fraction: float = setting(
        0.01,
        "fraction of unusable rows (dropped and counted) that stops the run",
        closed_fraction,
        flag="--max-bad-rows",
    )
    seed: int = seed_setting()

    @property
    def label_feature(self) -> str:
        """The label's feature name in the examples (the column name, sanitised)."""
        return rows.sanitize_name(self.label_column)
