"""The transform stage's settings: how ``preprocessing_fn`` scales the features.

Transform receives them in its ``custom_config`` (with the label column), compiled into the
pipeline: a change of scaling is a new transform graph, so it is not a runtime parameter.
"""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.core.stage_settings import StageSettings, one_of, setting

SCALINGS = ("standard", "centered")


@dataclasses.dataclass(frozen=True)
class TransformSettings(StageSettings):
    """Settings of Transform's ``preprocessing_fn`` (``trainer_module/preprocessing.py``)."""

    STAGE = "transform"

    scaling: str = setting(
        "standard",
        "standard: z-score every feature (features of different units weigh alike); centered: "
        "subtract every feature's mean and divide all by one scale (the root mean variance), "
        "which keeps the relative weight of features that share a unit, such as pixels",
        one_of(*SCALINGS),
    )
