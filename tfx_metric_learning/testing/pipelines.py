"""The whole pipeline, small and quick: ``fast_config`` and ``run_pipeline``.

``fast_config(base_dir)`` is a ``PipelineConfig`` for a few hundred digits (``digits_csv``,
300 rows), two epochs of batch 64, everything under ``base_dir`` (pipeline root, ML Metadata
SQLite file, serving folder), with the classic (PCA/LDA) baselines off, as they cost more
than the rest of the evaluation on tiny data. Keyword overrides go to the config's stage
settings by stage name (``training={"loss": "my_loss"}``, ``transform={...}``) or to its
own fields (``data=...``). ``run_pipeline(config)`` runs it with the local runner (TFX's
``LocalDagRunner``, Beam's DirectRunner) and returns the run summary (``pipeline/run_report``:
components' states, metrics, blessing, pushed model).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfx_metric_learning.pipeline.config import STAGES, PipelineConfig

ROWS = 300
EPOCHS = 2
BATCH_SIZE = 64


def fast_config(base_dir: str, **overrides: Any) -> PipelineConfig:
    """The quick config of the module docstring, with ``overrides`` applied."""
    from tfx_metric_learning.testing.datasets import digits_csv

    stages: dict[str, dict[str, Any]] = {
        "training": {"epochs": EPOCHS, "batch_size": BATCH_SIZE},
        "evaluation": {"classic_baselines": False},
    }
    fields: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in STAGES:
            stages[key] = {**stages.get(key, {}), **dict(value)}
        else:
            fields[key] = value
    if "data" not in fields:
        fields["data"] = digits_csv(os.path.join(base_dir, "data", "digits.csv"), rows=ROWS)
    defaults = PipelineConfig()
    settings = {
        stage: dataclasses.replace(getattr(defaults, stage), **values)
        for stage, values in stages.items()
    }
    return PipelineConfig(
        pipeline_root=os.path.join(base_dir, "pipeline"),
        metadata_path=os.path.join(base_dir, "metadata.sqlite"),
        serving_dir=os.path.join(base_dir, "serving"),
        **settings,
        **fields,
    )


def run_pipeline(config: PipelineConfig, log_file: str | None = None) -> dict[str, Any]:
    """Runs ``config`` with the local runner, quietly; returns the run summary."""
    from tfx_metric_learning.pipeline import local_runner

    lines: list[str] = []
    return local_runner.run(
        config,
        progress=lines.append,
        log_file=log_file or os.path.join(os.path.dirname(config.metadata_path), "run.log"),
        quiet=True,
    )
