"""Compiles ``create_pipeline(config)`` for Kubeflow Pipelines v2 (or Vertex AI Pipelines).

The output is a PipelineSpec in schema 2.1 (YAML: what the KFP 2 SDK loads and KFP runs) or a
Vertex AI PipelineJob (JSON, with the same PipelineSpec inside). Its tasks run in this
project's container image (``kubeflow/Dockerfile``), so ``preprocessing_fn`` and ``run_fn``
resolve by import path exactly as they do locally.

Runtime parameters (``pipeline.pipeline.RUNTIME_PARAMETERS``), with this config's values as
defaults in the spec itself and in the PipelineJob:

- ``data_root``: ExampleGen's input folder;
- ``training``: the training settings as JSON (every setting); PairGen follows it too, so a run
  with another loss gets the pairs, triplets or batches that loss consumes;
- ``evaluation``: the evaluation settings as JSON (every setting: thresholds, tolerance ...).
"""

from __future__ import annotations

import json
import os

from tfx import v1 as tfx
from tfx.orchestration import data_types

from pipeline.config import PipelineConfig
from pipeline.pipeline import RUNTIME_PARAMETERS, create_pipeline

DEFAULT_IMAGE = "ghcr.io/example/tfx-metric-learning:0.1.0"


def runtime_parameters(config: PipelineConfig, data_root: str) -> dict:
    """The pipeline parameters, each defaulting to this config's value."""
    defaults = {
        "data_root": data_root,
        "training": config.training.resolved().to_json(),
        "evaluation": config.evaluation.to_json(),
    }
    assert set(defaults) == set(RUNTIME_PARAMETERS)
    return {
        name: data_types.RuntimeParameter(name, ptype=str, default=value)
        for name, value in defaults.items()
    }


def conditions_on_declared_inputs(pipeline_spec: dict) -> None:
    """Points each task's trigger condition at the inputs the task declares (in place).

    TFX 1.16's KFP v2 compiler writes a condition on a channel as
    ``inputs.artifacts['_<producer>.<output>']`` even when the task already takes that channel
    as a declared input under its own key (Pusher's ``model_blessing``), and then declares no
    input of that name (TFX's own testdata, ``expected_dummy_consumer_with_condition_task``,
    shows the same). The condition then names an input the task does not have: it cannot be
    evaluated, and Pusher could never run. Each such reference is rewritten to the declared
    input fed by the same producer and output; a condition on a channel the task does not take
    keeps the implicit input TFX declared for it.
    """
    for task in pipeline_spec["root"]["dag"]["tasks"].values():
        condition = task.get("triggerPolicy", {}).get("condition")
        if not condition:
            continue
        inputs = task.get("inputs", {}).get("artifacts", {})
        for key, source in inputs.items():
            upstream = source.get("taskOutputArtifact")
            if not upstream:
                continue
            implicit = f"_{upstream['producerTask']}.{upstream['outputArtifactKey']}"
            if implicit not in inputs:
                condition = condition.replace(
                    f"inputs.artifacts['{implicit}']", f"inputs.artifacts['{key}']"
                )
        task["triggerPolicy"]["condition"] = condition


def compile_pipeline(
    config: PipelineConfig,
    data_root: str,
    output_path: str,
    image: str = DEFAULT_IMAGE,
) -> dict:
    """Writes the compiled pipeline to ``output_path``; returns the PipelineJob as a dict.

    ``.yaml``/``.yml`` writes the PipelineSpec, anything else the PipelineJob JSON. Nothing is
    run.
    """
    config.validate()
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    params = runtime_parameters(config, data_root)
    pipeline = create_pipeline(config, data_root, runtime_parameters=params)
    defaults = {name: p.default for name, p in params.items()}
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    conditions_on_declared_inputs(job["pipelineSpec"])
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
