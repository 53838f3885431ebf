"""The open-source Kubeflow Pipelines backend's rules for a PipelineSpec, checked before it runs.

``compile`` refuses a spec that breaks one (and the tests check every compiled spec), so a
pipeline the backend would refuse at submission, or fail on at run time, never leaves this
machine. Each rule names where kubeflow/pipelines states it (``backend/src/v2``, read at
commit 7b70c7b of 2026-08-21):

- ``pipelineInfo.name`` is set (``compiler/argocompiler/argo.go``: "pipelineInfo.name is
  empty");
- every task's component exists, and a component is a DAG or has an executor that exists
  (``compiler/visitor.go``: "cannot find component ref name", "executor(label=...) not found");
- an executor is a container or an importer: ``compiler/visitor.go`` returns
  "non-container and non-importer executor not implemented", ``compiler/argocompiler/dag.go``
  "resolver executors not implemented" and "custom job executors is Google Cloud only";
- an importer task has no trigger condition (``compiler/argocompiler/dag.go``);
- every producer task an input names exists (``compiler/argocompiler/dag.go``
  ``addImplicitDependencies``: "unknown producer task"), as does every task named in
  ``dependentTasks``;
- a trigger condition reads only inputs its task declares: the driver evaluates it as CEL over
  the task's own ``ExecutorInput`` (``expression/expression.go`` ``Condition``,
  ``driver/container.go``), so any other name is an evaluation error that fails the task;
- a container has an image and a command (the launcher runs ``command + args``,
  ``component/launcher_v2.go``);
- an accelerator type is a Kubernetes resource name with a count (``driver/driver.go``
  ``initPodSpecPatch`` puts ``type: count`` in the pod's limits);
- the spec names its pipeline root (``defaultPipelineRoot``): a run or recurring run created
  without one gets the backend's ``minio://mlpipeline/v2/artifacts`` (``config/env.go``,
  ``driver/root_dag.go``), which TensorFlow cannot write. This last rule is this project's:
  the backend itself accepts such a spec.

Vertex AI Pipelines (``vertex_problems``) runs the same DAG structure (every rule above but the
Kubernetes accelerator names), and adds two of its own:

- ``pipelineInfo.name`` matches ``[a-z0-9][a-z0-9-]{0,127}`` (TFX's
  ``tfx/orchestration/kubeflow/v2/pipeline_builder.py`` ``_check_name``, the KFP SDK's
  ``kfp/dsl/utils.py`` ``validate_pipeline_name``);
- an accelerator type is one of Vertex AI's ``AcceleratorType`` names, with a count
  (google-cloud-aiplatform ``aiplatform_v1.types.AcceleratorType``, read through
  ``deployment.vertex_accelerators``).
"""

from __future__ import annotations

import re
from typing import Any

_CONDITION_INPUT = re.compile(r"inputs\.(artifacts|parameter_values|parameterValues)\['([^']+)'\]")
_VERTEX_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_K8S_RESOURCE = re.compile(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def problems(spec: dict[str, Any], kubernetes_accelerators: bool = True) -> list[str]:
    """Every rule of the module docstring that ``spec`` (a PipelineSpec as a dict) breaks.

    ``kubernetes_accelerators``: check accelerator types as Kubernetes resource names (the
    open-source backend's); a spec for Vertex AI names its own accelerator types.
    """
    found: list[str] = []
    if not spec.get("pipelineInfo", {}).get("name"):
        found.append("pipelineInfo.name is empty")
    if not spec.get("defaultPipelineRoot"):
        found.append(
            "no defaultPipelineRoot: the open-source backend would write to its MinIO default"
        )
    components = spec.get("components", {})
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    found += _dag_problems("root", spec.get("root", {}).get("dag", {}), components, executors)
    for name, component in components.items():
        if "dag" in component:
            found += _dag_problems(name, component["dag"], components, executors)
    for label, executor in executors.items():
        kinds = set(executor) & {"container", "importer", "resolver", "customJob"}
        if kinds - {"container", "importer"} or not kinds:
            found.append(
                f"executor {label} is {sorted(kinds) or 'of no kind'}: the open-source backend "
                f"runs only container and importer executors"
            )
        container = executor.get("container")
        if container is not None:
            if not container.get("image") or not container.get("command"):
                found.append(f"executor {label} has no image or no command")
            accelerator = container.get("resources", {}).get("accelerator")
            if (
                accelerator
                and kubernetes_accelerators
                and not (
                    _K8S_RESOURCE.match(accelerator.get("type", ""))
                    and int(accelerator.get("count", 0)) > 0
                )
            ):
                found.append(
                    f"executor {label} asks for accelerator {accelerator}: the type must be a "
                    f"Kubernetes resource name (e.g. nvidia.com/gpu) with a count"
                )
    return found


TARGETS = ("kfp", "vertex")


def problems_for(spec: dict[str, Any], target: str) -> list[str]:
    """The rules ``spec`` breaks on ``target``: ``kfp`` (open source) or ``vertex``."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    return problems(spec) if target == "kfp" else vertex_problems(spec)


def vertex_problems(spec: dict[str, Any]) -> list[str]:
    """Every rule of a Vertex AI pipeline (module docstring) that ``spec`` breaks."""
    from tfx_metric_learning.kubeflow.deployment import vertex_accelerators

    found = problems(spec, kubernetes_accelerators=False)
    name = spec.get("pipelineInfo", {}).get("name", "")
    if name and not _VERTEX_PIPELINE_NAME.fullmatch(name):
        found.append(f"pipelineInfo.name {name!r} is not [a-z0-9][a-z0-9-]{{0,127}}")
    names = vertex_accelerators()
    for label, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        accelerator = executor.get("container", {}).get("resources", {}).get("accelerator")
        if accelerator and not (
            accelerator.get("type") in names and int(accelerator.get("count", 0)) > 0
        ):
            found.append(
                f"executor {label} asks for accelerator {accelerator}: Vertex AI takes one of "
                f"its AcceleratorType names (e.g. NVIDIA_TESLA_T4) with a count"
            )
    return found


def _dag_problems(name: str, dag: dict, components: dict, executors: dict) -> list[str]:
    found = []
    tasks = dag.get("tasks", {})
    if not tasks:
        found.append(f"DAG {name} has no tasks")
    for task_name, task in tasks.items():
        ref = task.get("componentRef", {}).get("name", "")
        component = components.get(ref)
        if component is None:
            found.append(f"task {task_name}: no component {ref!r}")
            continue
        label = component.get("executorLabel")
        if label and label not in executors:
            found.append(f"task {task_name}: no executor {label!r}")
        if not label and "dag" not in component:
            found.append(f"task {task_name}: component {ref} is neither an executor nor a DAG")
        for dep in task.get("dependentTasks", []):
            if dep not in tasks:
                found.append(f"task {task_name} depends on {dep!r}, which is no task of {name}")
        inputs = task.get("inputs", {})
        for key, source in inputs.get("artifacts", {}).items():
            producer = source.get("taskOutputArtifact", {}).get("producerTask")
            if producer is not None and producer not in tasks:
                found.append(f"task {task_name}: input {key} from unknown task {producer!r}")
        for key, source in inputs.get("parameters", {}).items():
            producer = source.get("taskOutputParameter", {}).get("producerTask")
            if producer is not None and producer not in tasks:
                found.append(f"task {task_name}: parameter {key} from unknown task {producer!r}")
        condition = task.get("triggerPolicy", {}).get("condition", "")
        if condition:
            if label and "importer" in executors.get(label, {}):
                found.append(f"task {task_name}: an importer task cannot have a condition")
            for kind, key in _CONDITION_INPUT.findall(condition):
                declared = inputs.get("artifacts" if kind == "artifacts" else "parameters", {})
                if key not in declared:
                    found.append(
                        f"task {task_name}: its condition reads input {key!r}, which the task "
                        f"does not declare"
                    )
    return found
