"""Compiles ``create_pipeline(config)`` for Kubeflow Pipelines v2 (or Vertex AI Pipelines).

The output is a PipelineSpec in schema 2.1 (YAML: what the KFP 2 SDK loads and KFP runs) or a
Vertex AI PipelineJob (JSON, with the same PipelineSpec inside). Its tasks run in this
project's container image (``kubeflow/Dockerfile``), so ``preprocessing_fn`` and ``run_fn``
resolve by import path exactly as they do locally.

Runtime parameters (``pipeline.pipeline.RUNTIME_PARAMETERS``), with this config's values as
defaults in the spec itself and in the PipelineJob:

- ``data_root``: ExampleGen's input folder;
- ``ingest``: the ingest settings as JSON (every setting: the ``window`` of spans, the label,
  the protocol ...); the ``data_pattern`` shapes the compiled pipeline (a span pattern adds
  the ``new_span`` split) and ExampleGen refuses a different one at run time;
- ``validation``: the validation settings as JSON (``allow_anomalies`` ...);
- ``training``: the training settings as JSON (every setting); PairGen follows it too, so a run
  with another loss gets the pairs, triplets or batches that loss consumes;
- ``evaluation``: the evaluation settings as JSON (every setting: thresholds, tolerance ...).

A comparison (``compile --compare``: ``pipeline.create_compare_pipeline``) compiles each
(candidate, seed) branch's training settings in, so it has every parameter but ``training``
(``COMPARE_RUNTIME_PARAMETERS``); its branches depend on nothing but the shared Transform, so
Kubeflow runs them in parallel pods, and its Leaderboard task waits for all of them.
"""

from __future__ import annotations

import json
import os

from tfx.orchestration import data_types
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from tfx_metric_learning.pipeline.config import PipelineConfig, is_remote
from tfx_metric_learning.pipeline.pipeline import (
    COMPARE_RUNTIME_PARAMETERS,
    RUNTIME_PARAMETERS,
    create_compare_pipeline,
    create_pipeline,
)

DEFAULT_IMAGE = "ghcr.io/example/tfx-metric-learning:0.1.0"


def runtime_parameters(config: PipelineConfig, data_root: str) -> dict:
    """The pipeline parameters, each defaulting to this config's value."""
    defaults = {
        "data_root": data_root,
        "ingest": config.ingest.to_json(),
        "validation": config.validation.to_json(),
        "training": config.training.resolved().to_json(),
        "evaluation": config.evaluation.to_json(),
    }
    assert set(defaults) == set(RUNTIME_PARAMETERS)
    return {
        name: data_types.RuntimeParameter(name, ptype=str, default=value)
        for name, value in defaults.items()
    }


def local_paths(config: PipelineConfig, data_root: str) -> list[str]:
    """The paths of the compiled pipeline that are local: pods read them only if mounted."""
    named = {
        "--data-root": data_root,
        "--pipeline-root": config.pipeline_root,
        "--serving-dir": config.serving_dir,
        "--schema": config.schema_file,
    }
    return [f"{flag} {path}" for flag, path in named.items() if path and not is_remote(path)]


def compile_pipeline(
    config: PipelineConfig,
    data_root: str,
    output_path: str,
    image: str = DEFAULT_IMAGE,
    comparison: tuple[list, list[int], int] | None = None,
) -> dict:
    """Writes the compiled pipeline to ``output_path``; returns the PipelineJob as a dict.

    ``.yaml``/``.yml`` writes the PipelineSpec, anything else the PipelineJob JSON. Nothing is
    run. ``comparison``: ``(candidates, seeds, tuning trials)`` compiles the comparison of
    ``pipeline.create_compare_pipeline`` (its winner blessed and pushed) instead.
    """
    config.validate()
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    params = runtime_parameters(config, data_root)
    if comparison is None:
        pipeline = create_pipeline(config, data_root, runtime_parameters=params)
    else:
        params = {k: v for k, v in params.items() if k in COMPARE_RUNTIME_PARAMETERS}
        candidates, seeds, trials = comparison
        pipeline = create_compare_pipeline(
            config, data_root, candidates, seeds, runtime_parameters=params, tuning_trials=trials
        )
    defaults = {name: p.default for name, p in params.items()}
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    # the defaults also go into the PipelineSpec itself, for uploads of the YAML alone
    for name, value in defaults.items():
        spec = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"][name]
        spec["defaultValue"] = value
        spec["isOptional"] = True
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if output_path.endswith((".yaml", ".yml")):
        import yaml

        with open(output_path, "w") as f:
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    else:
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2)
    return job
