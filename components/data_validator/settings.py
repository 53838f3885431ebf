"""The validation stage's settings: what stops a run, and the drift thresholds a schema gets."""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    boolean,
    open_fraction,
    setting,
)


@dataclasses.dataclass(frozen=True)
class ValidationSettings(StageSettings):
    """Settings of the DataValidator (one ``settings`` execution property) and of ``schema``."""

    STAGE = "validation"

    allow_anomalies: bool = setting(
        False,
        "go on to Transform despite anomalies (logged as a warning and recorded) instead of "
        "stopping the run before Transform",
        boolean,
    )
    drift_threshold: float = setting(
        0.2,
        "schema command: the Jensen-Shannon divergence between a span's and the previous "
        "accepted span's histogram of a numeric feature above which it drifted (written per "
        "feature into the schema, where it can be edited)",
        open_fraction,
    )
    label_drift_threshold: float = setting(
        0.2,
        "schema command: the largest change of any class's share of rows (L-infinity "
        "distance) between a span and the previous accepted span",
        open_fraction,
    )
    verdicts_dir: str = setting(
        "",
        "folder of the span ledger (components/data_validator/ledger.py); the pipeline sets "
        "PIPELINE_ROOT/span_verdicts",
        cli=False,
    )
