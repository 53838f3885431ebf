"""A stand-in for the two Kubeflow Pipelines v2 backends: runs a compiled PipelineSpec.

No cluster exists here, so this plays the backend's part, and only that part, around the
real artifacts: every container task runs as its compiled ``command + args`` (the image's
entrypoint, ``kubeflow/entrypoint.py``) in a process of its own (``pods.py``: by default
forked from a server that has imported TFX's runner once, else a new interpreter), with the
``ExecutorInput`` the backend would write; what happens inside a task is all TFX's and ours.
One ``LocalBackend`` runs one compiled pipeline any number of times against one metadata
store and one cache, as a backend keeps them between the runs of a schedule.

Two modes, each modelled on its own backend:

``mode="kfp"``: open-source Kubeflow Pipelines 2.x, from kubeflow/pipelines ``backend/src/v2``
(commit 7b70c7b, 2026-08-21):

- a task's driver resolves its inputs, then evaluates its condition (``driver/container.go``);
  a task runs only when every task in its ``dependentTasks`` succeeded: the Argo DAG the
  backend compiles gives each task ``depends: "<upstream>.Succeeded && ..."``
  (``compiler/argocompiler/dag.go`` ``depends``), so a task after a skipped one is omitted;
- no ``lifecycle.preCacheCheck`` runs: the backend has no such hook;
- cache (``driver/cache.go`` ``getFingerPrint``, ``cacheutils/cache.go`` ``GenerateCacheKey``):
  for a task with ``cachingOptions.enableCache``, the key is the input artifacts' *names*, the
  input parameter values, the output artifacts' name/type/metadata, the output parameters'
  types, the image and the command with its arguments; a hit reuses the earlier execution's
  output artifacts and parameters, and nothing runs;
- input artifacts: ``name`` is the ML Metadata id as a decimal string and ``type`` an empty
  ``instanceSchema`` (``metadata/client.go`` ``GetOutputArtifactsByExecutionId`` leaves the
  schema empty, ``ToRuntimeArtifact`` copies it); ``metadata`` holds the custom properties,
  numbers as doubles, plus the launcher's ``display_name`` and ``store_session_info``
  (``RecordArtifact``);
- output artifacts: ``name`` is the output key, ``uri``
  ``<root>/<pipeline>/<run>/<task>/<uuid>/<key>`` (``driver/driver.go`` ``provisionOutputs``,
  ``metadata/client.go`` ``GetPipeline``), the type as the component defines it; the
  executor output file is ``/tmp/kfp_outputs/output_metadata.json`` of the task's pod for a
  pipeline root that is no object store, here a folder private to the task; a local root is
  neither downloaded nor uploaded (``component/launcher_v2.go``: "does not have a recognized
  storage URI ... Skipping"), as on a volume every pod mounts;
- the executor output's ``uri`` and ``metadata`` are merged into the output artifacts
  (``mergeRuntimeArtifacts``); its ``parameterValues`` are the task's output parameters
  (``collectOutputParameters``: "output metadata file has the highest priority"), which a
  ``taskOutputParameter`` input of a later task resolves to (``driver/resolve.go``);
- the pipeline root is the run's, else the spec's ``defaultPipelineRoot`` as the KFP SDK and
  UI pass it; a run without either would use ``minio://mlpipeline/v2/artifacts``
  (``config/env.go``): refused here, as no task could write it.

``mode="vertex"``: Vertex AI Pipelines, whose service is not open source; modelled on what its
documentation and client library (google-cloud-aiplatform) state: artifacts named by resource
name (``projects/.../metadataStores/default/artifacts/<n>``) with their full types on every
input; output URIs ``<root>/<run>/<task>_<uuid>/<key>``; ``lifecycle.preCacheCheck`` runs
before the container when the spec has one; per-task caching keyed on the same inputs,
parameters and container as above; output parameters from the executor output file's
``parameterValues`` (what the KFP SDK's executor writes, ``kfp/dsl/executor.py``); conditions
and skipped upstream tasks as above.

Both resolve the run placeholders ``{{$.pipeline_job_name}}`` and ``{{$.pipeline_job_uuid}}``
in constant parameters (``driver/resolve.go`` ``resolveInputParameter``).

Not simulated: pods, resources (they are checked by ``kubeflow/backend_rules.py``), retries,
parallel execution, the UI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import uuid

import celpy
import yaml

from tests.kubeflow import pods
from tests.kubeflow.pods import TaskFailed

VERTEX_NAME_PREFIX = "projects/local/locations/local/metadataStores/default/artifacts/"
MODES = ("kfp", "vertex")
RUN_PLACEHOLDERS = ("{{$.pipeline_job_name}}", "{{$.pipeline_job_uuid}}")


@dataclasses.dataclass
class StoredArtifact:
    """An artifact as the metadata store knows it."""

    id: int
    name: str
    schema_title: str
    uri: str
    metadata: dict
    run_id: str
    task: str
    output_key: str
    artifact_type: dict


@dataclasses.dataclass
class TaskRecord:
    """What happened to one task in one run."""

    task: str
    state: str  # COMPLETE, CACHED, SKIPPED (condition false), OMITTED (an upstream did not run)
    seconds: float
    detail: str = ""


def schema_title(artifact_type: dict) -> str:
    """``tfx.Model`` from a type given as ``schemaTitle`` or as an ``instanceSchema`` YAML."""
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return (yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}).get("title", "")


class LocalBackend:
    """Runs one compiled pipeline any number of times against one store and one cache."""

    def __init__(
        self,
        spec: dict,
        env: dict | None = None,
        log=print,
        mode: str = "vertex",
        pods_dir: str = "",
        processes: str = pods.FORKED,
    ):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {MODES}")
        self.processes = processes  # pods.FRESH or pods.FORKED, checked by pods.run
        self.spec = spec
        self.mode = mode
        self.env = env or dict(os.environ)
        self.log = log
        self.pods_dir = pods_dir
        self.store: list[StoredArtifact] = []
        self.cache: dict[str, dict] = {}  # fingerprint -> {"outputs", "run"}
        self.runs: dict[str, list[TaskRecord]] = {}

    # --- the DAG --------------------------------------------------------------------------

    def _order(self) -> list[str]:
        tasks = self.spec["root"]["dag"]["tasks"]
        done: list[str] = []
        while len(done) < len(tasks):
            ready = sorted(
                name
                for name, task in tasks.items()
                if name not in done and set(task.get("dependentTasks", [])) <= set(done)
            )
            if not ready:
                raise ValueError(f"dependency cycle among {sorted(set(tasks) - set(done))}")
            done.append(ready[0])
        return done

    def run(
        self,
        run_id: str,
        parameters: dict | None = None,
        stop_after: str | None = None,
        pipeline_root: str | None = None,
    ) -> list[TaskRecord]:
        """One pipeline run; returns a record per task (``stop_after`` ends it early)."""
        root = pipeline_root or self.spec.get("defaultPipelineRoot")
        if not root:
            raise ValueError(
                "no pipeline root: the open-source backend would use minio://mlpipeline/v2/"
                "artifacts, which no TFX task can write"
            )
        defaults = {
            name: p.get("defaultValue")
            for name, p in self.spec["root"]["inputDefinitions"]["parameters"].items()
        }
        context = {
            "params": defaults | (parameters or {}),
            "root": root,
            "run_id": run_id,
            "uuid": str(uuid.uuid4()),
            "outputs": {},  # task -> {key: [StoredArtifact]}
            "parameters_out": {},  # task -> {key: value}
            "states": {},
        }
        records = []
        for name in self._order():
            started = time.time()
            record = self._run_task(name, context)
            record.seconds = round(time.time() - started, 1)
            context["states"][name] = record.state
            records.append(record)
            self.log(
                f"[{self.mode} {run_id}] {name:<40} {record.state:<9} {record.seconds:6.1f} s  "
                f"{record.detail}"
            )
            if name == stop_after:
                break
        self.runs[run_id] = records
        return records

    def _run_task(self, name: str, context: dict) -> TaskRecord:
        task = self.spec["root"]["dag"]["tasks"][name]
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        upstream = task.get("dependentTasks", [])
        blocked = [u for u in upstream if context["states"].get(u) not in ("COMPLETE", "CACHED")]
        if blocked:  # Argo: depends "<upstream>.Succeeded"
            context["outputs"][name] = {}
            return TaskRecord(name, "OMITTED", 0.0, f"upstream did not succeed: {blocked}")
        if "container" not in executor:
            raise ValueError(f"task {name}: executor {sorted(executor)} is not a container")
        inputs = self._inputs(task, component, context)
        parameters = self._parameter_values(task, context)
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not self._condition_holds(condition, inputs, parameters):
            context["outputs"][name] = {}
            return TaskRecord(name, "SKIPPED", 0.0, f"condition false: {condition}")
        return self._run_container(name, task, component, executor, inputs, parameters, context)

    # --- inputs ---------------------------------------------------------------------------

    def _inputs(self, task: dict, component: dict, context: dict) -> dict[str, list[dict]]:
        definitions = component.get("inputDefinitions", {}).get("artifacts", {})
        found = {}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            upstream = source["taskOutputArtifact"]
            artifacts = (
                context["outputs"]
                .get(upstream["producerTask"], {})
                .get(upstream["outputArtifactKey"], [])
            )
            found[key] = [
                self._input_artifact(a, definitions[key]["artifactType"]) for a in artifacts
            ]
        return found

    def _input_artifact(self, artifact: StoredArtifact, declared_type: dict) -> dict:
        if self.mode == "kfp":
            metadata = {
                **artifact.metadata,
                "display_name": artifact.output_key,
                "store_session_info": json.dumps({"Provider": "", "Params": {}}),
            }
            return {
                "name": str(artifact.id),
                "type": {"instanceSchema": ""},
                "uri": artifact.uri,
                "metadata": metadata,
            }
        return {
            "name": artifact.name,
            "type": declared_type,
            "uri": artifact.uri,
            "metadata": dict(artifact.metadata),
        }

    def _parameter_values(self, task: dict, context: dict) -> dict:
        values = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                values[key] = context["params"][source["componentInputParameter"]]
            elif "taskOutputParameter" in source:
                upstream = source["taskOutputParameter"]
                produced = context["parameters_out"].get(upstream["producerTask"], {})
                if upstream["outputParameterKey"] not in produced:
                    raise TaskFailed(
                        f"parameter {key}: task {upstream['producerTask']} did not output "
                        f"{upstream['outputParameterKey']}"
                    )
                values[key] = produced[upstream["outputParameterKey"]]
            else:
                value = source["runtimeValue"]["constant"]
                if value == "{{$.pipeline_job_name}}":
                    value = context["run_id"]
                elif value == "{{$.pipeline_job_uuid}}":
                    value = context["uuid"]
                values[key] = value
        return values

    @staticmethod
    def _condition_holds(condition: str, inputs: dict[str, list[dict]], parameters) -> bool:
        env = celpy.Environment()
        program = env.program(env.compile(condition))
        activation = {
            "inputs": celpy.json_to_cel(
                {
                    "artifacts": {key: {"artifacts": arts} for key, arts in inputs.items()},
                    "parameter_values": parameters,
                }
            )
        }
        return bool(program.evaluate(activation))

    # --- containers -----------------------------------------------------------------------

    def _outputs(self, name: str, component: dict, context: dict) -> tuple[dict, str, str]:
        """``({key: RuntimeArtifact}, task folder, executor output file)`` as provisioned."""
        definitions = component.get("outputDefinitions", {}).get("artifacts", {})
        salt = uuid.uuid4().hex[:8]
        pipeline = self.spec["pipelineInfo"]["name"]
        if self.mode == "kfp":
            task_root = os.path.join(context["root"], pipeline, context["run_id"], name, salt)
            pod = os.path.join(self.pods_dir or context["root"], "pods", f"{name}-{salt}")
            output_file = os.path.join(pod, "tmp", "kfp_outputs", "output_metadata.json")
        else:
            task_root = os.path.join(context["root"], context["run_id"], f"{name}_{salt}")
            output_file = os.path.join(task_root, "executor_output.json")
        outputs = {
            key: {
                "name": key if self.mode == "kfp" else "",
                "type": definition["artifactType"],
                "uri": os.path.join(task_root, key),
                "metadata": dict(definition.get("metadata") or {}),
            }
            for key, definition in definitions.items()
        }
        return outputs, task_root, output_file

    def _fingerprint(self, inputs, parameters, outputs, output_types, container) -> str:
        """The cache key of ``cacheutils.GenerateCacheKey``, hashed as ``GenerateFingerPrint``."""
        key = {
            "inputArtifactNames": {
                k: {"artifactNames": [a["name"] for a in arts]} for k, arts in inputs.items()
            },
            "inputParameterValues": parameters,
            "outputArtifactsSpec": {
                k: {"name": o["name"], "type": o["type"], "metadata": o["metadata"]}
                for k, o in outputs.items()
            },
            "outputParametersSpec": output_types,
            "containerSpec": {
                "image": container["image"],
                "cmdArgs": [*container["command"], *container.get("args", [])],
            },
        }
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _run_container(self, name, task, component, executor, inputs, parameters, context):
        container = executor["container"]
        outputs, task_root, output_file = self._outputs(name, component, context)
        caching = task.get("cachingOptions", {}).get("enableCache", False)
        output_types = {
            key: definition["parameterType"]
            for key, definition in component.get("outputDefinitions", {})
            .get("parameters", {})
            .items()
        }
        fingerprint = self._fingerprint(inputs, parameters, outputs, output_types, container)
        if caching and fingerprint in self.cache:
            hit = self.cache[fingerprint]
            context["outputs"][name] = hit["outputs"]
            context["parameters_out"][name] = hit["parameters"]
            return TaskRecord(name, "CACHED", 0.0, f"from run {hit['run']}")
        parameter_files = os.path.join(os.path.dirname(output_file), "parameters")
        executor_input = {
            "inputs": {"parameterValues": parameters, "artifacts": {}},
            "outputs": {
                "artifacts": {k: {"artifacts": [o]} for k, o in outputs.items()},
                "parameters": {
                    k: {"outputFile": os.path.join(parameter_files, k)} for k in output_types
                },
                "outputFile": output_file,
            },
        }
        for key, arts in inputs.items():
            executor_input["inputs"]["artifacts"][key] = {"artifacts": arts}
        ids = {key: len(self.store) + i + 1 for i, key in enumerate(outputs)}
        if self.mode == "vertex":
            for key, output in outputs.items():
                output["name"] = f"{VERTEX_NAME_PREFIX}{ids[key]}"
        os.makedirs(task_root, exist_ok=True)
        os.makedirs(os.path.dirname(output_file), exist_ok=True)
        pre = container.get("lifecycle", {}).get("preCacheCheck")
        if pre and self.mode == "vertex":
            self._exec(name + " (preCacheCheck)", pre["command"], pre["args"], executor_input)
        self._exec(name, container["command"], container.get("args", []), executor_input)
        reported, values = {}, {}
        if os.path.exists(output_file):
            with open(output_file) as f:
                written = json.load(f)
            reported, values = written.get("artifacts", {}), written.get("parameterValues", {})
        for key in set(output_types) - set(values):  # else each from its own file
            path = executor_input["outputs"]["parameters"][key]["outputFile"]
            if os.path.exists(path):
                with open(path) as f:
                    values[key] = f.read()
        missing = sorted(set(output_types) - set(values))
        if missing:
            raise TaskFailed(f"task {name} wrote no value for its output parameters {missing}")
        context["parameters_out"][name] = {k: values[k] for k in output_types}
        produced = {}
        for key, output in outputs.items():
            merged = dict(output)
            for runtime in reported.get(key, {}).get("artifacts", [])[:1]:
                if runtime.get("uri"):
                    merged["uri"] = runtime["uri"]
                merged["metadata"] = {**merged["metadata"], **(runtime.get("metadata") or {})}
            artifact_id = ids[key]
            stored = StoredArtifact(
                id=artifact_id,
                name=f"{VERTEX_NAME_PREFIX}{artifact_id}",
                schema_title=schema_title(output["type"]),
                uri=merged["uri"],
                metadata=merged["metadata"],
                run_id=context["run_id"],
                task=name,
                output_key=key,
                artifact_type=output["type"],
            )
            self.store.append(stored)
            produced[key] = [stored]
        context["outputs"][name] = produced
        if caching:
            self.cache[fingerprint] = {
                "outputs": produced,
                "parameters": context["parameters_out"][name],
                "run": context["run_id"],
            }
        return TaskRecord(name, "COMPLETE", 0.0)

    def _exec(self, name: str, command: list, args: list, executor_input: dict) -> None:
        payload = json.dumps(executor_input)
        argv = [sys.executable if c == "python" else c for c in command]
        argv += [payload if a == "{{$}}" else a for a in args]
        pods.run(name, argv, self.env, self.processes)
