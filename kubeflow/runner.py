"""Compiles ``create_pipeline(config)`` for Kubeflow Pipelines v2: open-source KFP or Vertex AI.

The output is a PipelineSpec in schema 2.1 (YAML: what the KFP 2 SDK loads and both backends
run) or a Vertex AI PipelineJob (JSON, with the same PipelineSpec inside). TFX's
``KubeflowV2DagRunner`` compiles it; ``complete_spec`` then makes it complete by itself, so no
backend supplies what the spec does not say:

- its pipeline root (``defaultPipelineRoot``): the config's, never the backend's default;
- every task's CPU and memory, and the Trainer's accelerators (``deployment.py``);
- every task runs ``entrypoint.py`` (TFX's runner behind a normaliser of either launcher's
  ``ExecutorInput``), in this project's image;
- no task relies on a driver only Vertex runs: ExampleGen's ``preCacheCheck`` (TFX's driver,
  which resolves the span and fingerprints the input) is removed, ExampleGen resolves spans
  itself (``components/example_gen/executor.py``);
- no cache replays files that changed outside the pipeline, and no task runs again whose
  inputs did not change: a first task, ``RunPlan`` (``run_plan.py``), never cached and handed
  the run's id (``{{$.pipeline_job_uuid}}``, resolved by both backends, so even a submission
  that forces caching on cannot match an earlier run), digests the data files, the production
  record and the schema file; ExampleGen, ProductionModel and ImportSchemaGen each take their
  digest as a parameter and are cached on it like every other task. Without it ExampleGen's
  cache key on the open-source backend (parameters, input artifacts, image, command:
  ``backend/src/v2/cacheutils/cache.go``) would be the same every day;
- the Pusher is handed the run's name (``{{$.pipeline_job_name}}``) for the production record;
- with ``trainer_workers`` >= 2 the Trainer task submits its training to the backend's
  distributed engine (``distributed.py``: a TFJob, or a Vertex AI custom job) and its pod
  only watches; the replicas get the Trainer's resources.

Then the spec is checked against the open-source backend's rules (``backend_rules.py``) and
refused if it breaks one. Paths the tasks read and write directly (data, pipeline root,
serving folder, schema) must be URIs TensorFlow opens (``gs://``), or local paths mounted in
every pod (``allow_local_paths``).

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
(``COMPARE_RUNTIME_PARAMETERS``); at most ``max_parallel_branches`` branches run at once.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.kubeflow import backend_rules, distributed, run_plan
from tfx_metric_learning.kubeflow.deployment import DeploymentSettings, stage_of
from tfx_metric_learning.pipeline.config import PipelineConfig, is_remote
from tfx_metric_learning.pipeline.paths import tensorflow_reads
from tfx_metric_learning.pipeline.pipeline import (
    ALWAYS_RUN,
    COMPARE_RUNTIME_PARAMETERS,
    RUNTIME_PARAMETERS,
    create_compare_pipeline,
    create_pipeline,
)

DEFAULT_IMAGE = "ghcr.io/example/tfx-metric-learning:0.1.0"
# every task's command: TFX's KFP v2 runner behind the normaliser of both launchers' input
ENTRYPOINT = ["python", "-m", "tfx_metric_learning.kubeflow.entrypoint"]
# the tasks a local run never caches read files outside the artifacts: on Kubeflow the plan
# digests those files and the tasks are cached on the digests
assert set(ALWAYS_RUN) <= set(run_plan.CONSUMERS), "a task that reads outside files is unplanned"
# the parameters the backends resolve per run (kubeflow/pipelines backend/src/v2/driver/
# resolve.go resolveInputParameter; Vertex AI's pipeline placeholders)
RUN_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
RUN_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
RUN_ID_KEY = "pipeline_run_id"
# Beam runners that run where the Beam component's pod is: no SDK container image needed
LOCAL_BEAM_RUNNERS = ("DirectRunner", "FnApiRunner", "PrismRunner", "")


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


def task_paths(config: PipelineConfig, data_root: str) -> dict[str, str]:
    """The paths the tasks open themselves, by the flag that sets them."""
    named = {
        "--data-root": data_root,
        "--pipeline-root": config.pipeline_root,
        "--serving-dir": config.serving_dir,
        "--schema": config.schema_file,
    }
    return {flag: path for flag, path in named.items() if path}


def local_paths(config: PipelineConfig, data_root: str) -> list[str]:
    """The paths of the compiled pipeline that are local: pods read them only if mounted."""
    return [
        f"{flag} {path}"
        for flag, path in task_paths(config, data_root).items()
        if not is_remote(path)
    ]


def path_problems(
    config: PipelineConfig, data_root: str, deployment: DeploymentSettings
) -> list[str]:
    """Why the tasks could not open a path (empty: they can)."""
    out = []
    for flag, path in task_paths(config, data_root).items():
        if not is_remote(path) and not deployment.allow_local_paths:
            out.append(
                f"{flag} {path} is a local path: the cluster's pods see it only if it is mounted "
                f"at that path in every pod; give a bucket URI (gs://...) or, for such a "
                f"volume, --allow-local-paths"
            )
        elif is_remote(path) and not tensorflow_reads(path):
            out.append(
                f"{flag} {path}: TensorFlow, and so every TFX component, has no filesystem for "
                f"{path.split('://')[0]}:// here; use gs://... or a mounted volume "
                f"(--allow-local-paths)"
            )
    return out


def cluster_beam_args(args: list[str], image: str) -> list[str]:
    """Beam arguments with the pipeline image as the SDK container of a remote runner.

    A runner that starts its own workers (Dataflow, Flink, Spark, portable) runs the Beam
    steps in ``--sdk_container_image``; unless the arguments name one, it is ``image``, the
    image every task runs in, so the workers run the same code and stack.
    """
    runner = next(
        (a.split("=", 1)[1] for a in args if a.startswith("--runner=")),
        "",
    )
    named = any(
        a.startswith(("--sdk_container_image", "--worker_harness_container_image")) for a in args
    )
    if runner in LOCAL_BEAM_RUNNERS or named:
        return list(args)
    return [*args, f"--sdk_container_image={image}"]


def compile_pipeline(
    config: PipelineConfig,
    data_root: str,
    output_path: str,
    image: str = DEFAULT_IMAGE,
    comparison: tuple[list, list[int], int] | None = None,
    deployment: DeploymentSettings | None = None,
) -> dict:
    """Writes the compiled pipeline to ``output_path``; returns the PipelineJob as a dict.

    ``.yaml``/``.yml`` writes the PipelineSpec, anything else the PipelineJob JSON. Nothing is
    run. ``comparison``: ``(candidates, seeds, tuning trials)`` compiles the comparison of
    ``pipeline.create_compare_pipeline`` (its winner blessed and pushed) instead. Raises
    ``SettingsError`` naming what the cluster could not run (paths, settings, backend rules).
    """
    deployment = deployment or DeploymentSettings()
    deployment.validate()
    config.validate()
    found = path_problems(config, data_root, deployment)
    if found:
        raise SettingsError("; ".join(found))
    config = dataclasses.replace(
        config,
        beam_args=cluster_beam_args(config.beam_args, image),
        component_beam_args={
            k: cluster_beam_args(v, image) for k, v in config.component_beam_args.items()
        },
    )
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=ENTRYPOINT, use_pipeline_spec_2_1=True
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
            config,
            data_root,
            candidates,
            seeds,
            runtime_parameters=params,
            tuning_trials=trials,
            max_parallel_branches=deployment.max_parallel_branches,
        )
    plan = distributed_plan(deployment, image)
    if plan is not None:
        for component in pipeline.components:
            if stage_of(component.id) == "Trainer":
                component.executor_spec = executor_spec.ExecutorClassSpec(distributed.Executor)
    defaults = {name: p.default for name, p in params.items()}
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    complete_spec(job, defaults, deployment, image, plan)
    broken = backend_rules.problems_for(job["pipelineSpec"], deployment.target)
    if broken:
        raise SettingsError("the compiled spec breaks the backend's rules: " + "; ".join(broken))
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if output_path.endswith((".yaml", ".yml")):
        import yaml

        with open(output_path, "w") as f:
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    else:
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2)
    return job


def distributed_plan(deployment: DeploymentSettings, image: str) -> distributed.Plan | None:
    """How the Trainer spreads over machines (None: it trains in its own pod)."""
    if deployment.trainer_workers < 2:
        return None
    cpu, memory = deployment.resources("Trainer")
    return distributed.Plan(
        backend=deployment.target,
        workers=deployment.trainer_workers,
        image=image,
        cpu=cpu,
        memory_gb=memory,
        accelerator=deployment.accelerator_type(),
        accelerators=deployment.trainer_gpus,
        project=deployment.project,
        region=deployment.region,
        machine_type=deployment.trainer_machine_type,
    )


def complete_spec(
    job: dict,
    defaults: dict,
    deployment: DeploymentSettings,
    image: str,
    plan: distributed.Plan | None = None,
) -> None:
    """Makes the compiled PipelineJob ``job`` complete by itself (see the module docstring)."""
    spec = job["pipelineSpec"]
    spec["defaultPipelineRoot"] = job["runtimeConfig"]["gcsOutputDirectory"]
    # the defaults also go into the PipelineSpec itself, for uploads of the YAML alone
    for name, value in defaults.items():
        parameter = spec["root"]["inputDefinitions"]["parameters"][name]
        parameter["defaultValue"] = value
        parameter["isOptional"] = True
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        container = executors[component["executorLabel"]]["container"]
        container.pop("lifecycle", None)  # ExampleGen's preCacheCheck: a Vertex-only hook
        if plan is not None and stage_of(name) == "Trainer":
            # the task only submits and watches: the replicas get the Trainer's resources
            container["resources"] = {"cpuLimit": 1.0, "cpuRequest": 1.0}
            container["resources"] |= {"memoryLimit": 2.0, "memoryRequest": 2.0}
            _add_parameter(component, task, distributed.PLAN_KEY, plan.to_json())
        else:
            container["resources"] = _resources(stage_of(name), deployment)
        if stage_of(name) == "Pusher":
            _add_parameter(component, task, production_spec.PIPELINE_RUN_KEY, RUN_NAME_PLACEHOLDER)
    _add_run_plan(spec, deployment, image)


def _add_run_plan(spec: dict, deployment: DeploymentSettings, image: str) -> None:
    """Adds the ``RunPlan`` task and hands each consumer its digest (``run_plan.py``).

    The plan takes the very parameters its consumers take (constants or pipeline parameters),
    so it resolves what they will read; each consumer depends on it and stays cached.
    """
    tasks = spec["root"]["dag"]["tasks"]
    inputs: dict = {}
    definitions: dict = {}
    outputs: dict = {}
    for consumer, (output, reads) in run_plan.CONSUMERS.items():
        if consumer not in tasks:
            continue
        task = tasks[consumer]
        component = spec["components"][task["componentRef"]["name"]]
        for key in reads:
            if (
                inputs.get(key, task["inputs"]["parameters"][key])
                != task["inputs"]["parameters"][key]
            ):
                raise ValueError(f"two tasks the plan reads give {key} different values")
            inputs[key] = task["inputs"]["parameters"][key]
            definitions[key] = component["inputDefinitions"]["parameters"][key]
        outputs[output] = {"parameterType": "STRING"}
        component["inputDefinitions"]["parameters"][output] = {"parameterType": "STRING"}
        task["inputs"]["parameters"][output] = {
            "taskOutputParameter": {"producerTask": run_plan.TASK, "outputParameterKey": output}
        }
        task["dependentTasks"] = sorted({*task.get("dependentTasks", []), run_plan.TASK})
        task["cachingOptions"] = {"enableCache": True}
    inputs[RUN_ID_KEY] = {"runtimeValue": {"constant": RUN_ID_PLACEHOLDER}}
    definitions[RUN_ID_KEY] = {"parameterType": "STRING"}
    label = f"{run_plan.TASK}_executor"
    spec["components"][run_plan.TASK] = {
        "executorLabel": label,
        "inputDefinitions": {"parameters": definitions},
        "outputDefinitions": {"parameters": outputs},
    }
    spec["deploymentSpec"]["executors"][label] = {
        "container": {
            "image": image,
            "command": list(run_plan.COMMAND),
            "args": list(run_plan.ARGS),
            "resources": _resources(run_plan.TASK, deployment),
        }
    }
    tasks[run_plan.TASK] = {
        "taskInfo": {"name": run_plan.TASK},
        "componentRef": {"name": run_plan.TASK},
        "inputs": {"parameters": inputs},
        "cachingOptions": {"enableCache": False},
    }


def _add_parameter(component: dict, task: dict, key: str, value: str) -> None:
    """A string parameter ``key`` of the task, its constant ``value``."""
    component.setdefault("inputDefinitions", {}).setdefault("parameters", {})[key] = {
        "parameterType": "STRING"
    }
    task.setdefault("inputs", {}).setdefault("parameters", {})[key] = {
        "runtimeValue": {"constant": value}
    }


def _resources(stage: str, deployment: DeploymentSettings) -> dict:
    """The container's resource spec: requests equal to limits; the Trainer's accelerators."""
    cpu, memory = deployment.resources(stage)
    out = {"cpuLimit": cpu, "cpuRequest": cpu, "memoryLimit": memory, "memoryRequest": memory}
    accelerator = deployment.accelerator_type()
    if stage in ("Trainer", "Tuner") and accelerator:
        out["accelerator"] = {"type": accelerator, "count": deployment.trainer_gpus}
    return out
