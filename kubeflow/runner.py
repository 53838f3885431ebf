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
from pipeline.pipeline import create_pipeline, trainer_config

DEFAULT_IMAGE = "ghcr.io/example/tfx-metric-learning:0.1.0"


def runtime_parameters(config: PipelineConfig, data_root: str) -> dict:
    """What production changes per run, as KFP pipeline parameters (defaults: this config).

    ``data_root``: ExampleGen's input folder; ``trainer_config``: the Trainer's JSON config
    (loss, loss_params, epochs, batch_size, ...; validated by ``run_fn`` before training);
    ``thresholds``: the evaluator's blessing thresholds (JSON).
    """
    from tfx.orchestration import data_types

    config.validate()  # fills in the loss's parameter defaults
    return {
        "data_root": data_types.RuntimeParameter("data_root", ptype=str, default=data_root),
        "trainer_config": data_types.RuntimeParameter(
            "trainer_config", ptype=str, default=json.dumps(trainer_config(config))
        ),
        "thresholds": data_types.RuntimeParameter(
            "thresholds", ptype=str, default=json.dumps(config.thresholds, sort_keys=True)
        ),
    }


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
    params = runtime_parameters(config, data_root)
    pipeline = create_pipeline(config, data_root, runtime_parameters=params)
    defaults = {name: p.default for name, p in params.items()}
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    # the defaults also go into the PipelineSpec itself, for uploads of the YAML alone
    for name, value in defaults.items():
        job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"][name]["defaultValue"] = value
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if output_path.endswith((".yaml", ".yml")):
        import yaml

        with open(output_path, "w") as f:
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    else:
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2)
    return job
