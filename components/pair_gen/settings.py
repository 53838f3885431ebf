"""PairGen's settings: what it builds and how; the shape of it follows the training settings.

``mode``, ``num_negatives``, ``pk_classes`` and ``pk_examples`` are what the loss consumes, so
they are never set by hand: ``following(training)`` derives them from the training settings,
at compile time and again at run time when the executor is handed the training settings (the
``training`` runtime parameter on Kubeflow), so a loss changed for one scheduled run gets the
data it needs.
"""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    at_least,
    one_of,
    open_fraction,
    seed_setting,
    setting,
)
from tfx_metric_learning.trainer_module.settings import TrainingSettings

MODES = ("none", "pairs", "triplets", "triplets_k", "pk_batches")


@dataclasses.dataclass(frozen=True)
class PairSettings(StageSettings):
    """Settings of the PairGen component (one ``settings`` execution property)."""

    STAGE = "pair construction"

    mode: str = setting("none", "what to build (derived from the loss)", one_of(*MODES), cli=False)
    triplets_per_anchor: int = setting(4, "pairs/triplets PairGen draws per row", at_least(1))
    num_negatives: int = setting(
        1, "K negatives per anchor in triplets_k mode (the loss's)", at_least(1), cli=False
    )
    positive_fraction: float = setting(0.5, "share of similar pairs in pairs mode", open_fraction)
    pk_classes: int = setting(8, "P classes per P x K group (training's)", at_least(1), cli=False)
    pk_examples: int = setting(4, "K rows per class per group (training's)", at_least(1), cli=False)
    pk_num_batches: int = setting(
        0,
        "P x K groups drawn (0: as many as the train split has rows for)",
        at_least(0),
        cli=False,
    )
    block_rows: int = setting(
        20_000,
        "PairGen's memory knob: rows per block it spills and holds at a time",
        at_least(1),
        flag="--pair-block-rows",
    )
    seed: int = seed_setting()

    def following(self, training: TrainingSettings) -> PairSettings:
        """These settings with what ``training``'s loss consumes (mode, K, P x K)."""
        return dataclasses.replace(
            self,
            mode=training.pair_gen_mode,
            num_negatives=training.num_negatives,
            pk_classes=training.pk_classes,
            pk_examples=training.pk_examples,
        )
