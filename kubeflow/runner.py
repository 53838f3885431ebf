"""Compiles ``create_pipeline(config)`` for Kubeflow Pipelines v2 (or Vertex AI Pipelines).

The output is a PipelineJob (JSON, with the PipelineSpec inside) or a PipelineSpec YAML whose
tasks run in this project's container image (``kubeflow/Dockerfile``), so
``preprocessing_fn`` and ``run_fn`` resolve by import path exactly as they do locally.
"""

from __future__ import annotations

import json
import os

from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "ghcr.io/example/tfx-metric-learning:0.1.0"


def compile_pipeline(
    config: PipelineConfig,
    data_root: str,
    output_path: str,
    image: str = DEFAULT_IMAGE,
) -> dict:
    """Writes the compiled pipeline to ``output_path``; returns the PipelineJob as a dict.

    ``.json`` writes the PipelineJob, ``.yaml`` the PipelineSpec. Nothing is run.
    """
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    pipeline = create_pipeline(config, data_root)
    job = runner.run(pipeline, write_out=False)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if output_path.endswith((".yaml", ".yml")):
        import yaml

        with open(output_path, "w") as f:
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    else:
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2)
    return job
