"""A stand-in for the Kubeflow Pipelines v2 / Vertex AI backend: runs a compiled PipelineSpec.

No cluster exists here, so this plays the backend's part, and only that part, around the
real artifacts: every container task runs as its compiled ``command + args`` (TFX's KFP v2
container entrypoint, and the ExampleGen driver as its ``preCacheCheck``) in a fresh process,
with the ``ExecutorInput`` the spec defines; what happens inside a task is all TFX's and ours.

What it does as the backend would:

- tasks in the order of their dependencies; parameters from the spec's constants or the
  pipeline's parameters (defaults from the spec, overridden per run);
- artifacts: each output gets a resource name (Vertex-style,
  ``projects/local/locations/local/metadataStores/default/artifacts/<n>``), a URI under
  ``<pipeline root>/<run id>/<task>/<output>``, and the metadata the task's
  ``executor_output.json`` reports; all runs share one store, as a metadata store is shared;
- resolver tasks (``outputArtifactQueries``): the compiled filter is rendered with the task's
  input artifacts and evaluated over the store, newest matching artifact first; a filter that
  names an input with no artifact resolves nothing (the first run has no blessed model);
- ``triggerPolicy.condition``: evaluated as CEL (cel-python) over the task's own inputs; a
  condition that cannot be evaluated fails the run, as it would fail the task.

Not simulated: caching (every task runs), retries, parallel execution, pods, the UI.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

import celpy
import yaml

NAME_PREFIX = "projects/local/locations/local/metadataStores/default/artifacts/"


@dataclasses.dataclass
class StoredArtifact:
    """An artifact as the metadata store knows it."""

    name: str
    schema_title: str
    uri: str
    metadata: dict
    run_id: str
    task: str
    state: str = "LIVE"

    def runtime(self, artifact_type: dict) -> dict:
        """As a RuntimeArtifact of an ExecutorInput."""
        return {
            "name": self.name,
            "type": artifact_type,
            "uri": self.uri,
            "metadata": self.metadata,
        }


@dataclasses.dataclass
class TaskRecord:
    """What happened to one task in one run."""

    task: str
    state: str  # COMPLETE, SKIPPED (condition false), RESOLVED
    seconds: float
    detail: str = ""


class TaskFailed(RuntimeError):
    """A task's process failed; the message holds the end of its output."""


def schema_title(artifact_type: dict) -> str:
    """``tfx.Model`` from a type given as ``schemaTitle`` or as an ``instanceSchema`` YAML."""
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type["instanceSchema"])["title"]


_TERM = re.compile(
    r'^(?:schema_title="(?P<title>[^"]*)"'
    r"|state=(?P<state>[A-Z]+)"
    r"|metadata\.(?P<key>\w+)\.number_value=(?P<number>-?[\d.]+)"
    r'|name="(?P<name>[^"]*)")$'
)


def filter_matches(expression: str, artifact: StoredArtifact) -> bool:
    """Evaluates a compiled artifact filter (``A AND B AND ...``) on one artifact.

    Only the terms TFX's resolver compiler writes are known; any other term fails loudly, so a
    change in what TFX compiles cannot pass unnoticed.
    """
    for term in expression.split(" AND "):
        m = _TERM.match(term.strip())
        if not m:
            raise ValueError(f"filter term not understood by the stand-in: {term!r}")
        if m["title"] is not None and artifact.schema_title != m["title"]:
            return False
        if m["state"] is not None and artifact.state != m["state"]:
            return False
        if m["key"] is not None and artifact.metadata.get(m["key"]) != float(m["number"]):
            return False
        if m["name"] is not None and artifact.name != m["name"]:
            return False
    return True


_INPUT_PLACEHOLDER = re.compile(
    r"\{\{\$\.inputs\.artifacts\['(?P<key>[^']+)'\]\.metadata\['(?P<field>[^']+)'\]\}\}"
)


def _render(template: str, inputs: dict[str, list[StoredArtifact]]) -> str | None:
    """The filter with its input placeholders filled; None when an input has no artifact."""
    keys = [m["key"] for m in _INPUT_PLACEHOLDER.finditer(template)]
    if any(not inputs.get(k) for k in keys):
        return None
    return _INPUT_PLACEHOLDER.sub(
        lambda m: str(inputs[m["key"]][0].metadata.get(m["field"], "")), template
    )


class LocalBackend:
    """Runs one compiled pipeline any number of times against one artifact store."""

    def __init__(self, spec: dict, pipeline_root: str, env: dict | None = None, log=print):
        self.spec = spec
        self.root = pipeline_root
        self.env = env or dict(os.environ)
        self.store: list[StoredArtifact] = []
        self.log = log

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
        self, run_id: str, parameters: dict | None = None, stop_after: str | None = None
    ) -> list[TaskRecord]:
        """One pipeline run; returns a record per task (``stop_after`` ends it early)."""
        defaults = {
            name: p.get("defaultValue")
            for name, p in self.spec["root"]["inputDefinitions"]["parameters"].items()
        }
        params = defaults | (parameters or {})
        outputs: dict[str, dict[str, list[StoredArtifact]]] = {}
        records = []
        for name in self._order():
            started = time.time()
            record = self._run_task(run_id, name, params, outputs)
            record.seconds = round(time.time() - started, 1)
            records.append(record)
            self.log(
                f"[{run_id}] {name:<55} {record.state:<9} {record.seconds:6.1f} s  {record.detail}"
            )
            if name == stop_after:
                break
        return records

    def _inputs(self, task: dict, outputs) -> dict[str, list[StoredArtifact]]:
        found = {}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            upstream = source["taskOutputArtifact"]
            found[key] = outputs.get(upstream["producerTask"], {}).get(
                upstream["outputArtifactKey"], []
            )
        return found

    def _run_task(self, run_id, name, params, outputs) -> TaskRecord:
        task = self.spec["root"]["dag"]["tasks"][name]
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        inputs = self._inputs(task, outputs)
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not self._condition_holds(condition, inputs):
            outputs[name] = {}
            return TaskRecord(name, "SKIPPED", 0.0, f"condition false: {condition}")
        if "resolver" in executor:
            outputs[name] = self._resolve(executor["resolver"], inputs)
            found = {k: [a.name.rsplit("/", 1)[-1] for a in v] for k, v in outputs[name].items()}
            return TaskRecord(name, "RESOLVED", 0.0, f"artifacts {found}")
        outputs[name] = self._run_container(run_id, name, task, component, executor, params, inputs)
        return TaskRecord(name, "COMPLETE", 0.0)

    # --- conditions and resolvers ---------------------------------------------------------

    @staticmethod
    def _condition_holds(condition: str, inputs: dict[str, list[StoredArtifact]]) -> bool:
        env = celpy.Environment()
        program = env.program(env.compile(condition))
        activation = {
            "inputs": celpy.json_to_cel(
                {
                    "artifacts": {
                        key: {
                            "artifacts": [
                                {"name": a.name, "uri": a.uri, "metadata": a.metadata}
                                for a in artifacts
                            ]
                        }
                        for key, artifacts in inputs.items()
                    }
                }
            )
        }
        return bool(program.evaluate(activation))

    def _resolve(self, resolver: dict, inputs) -> dict[str, list[StoredArtifact]]:
        resolved = {}
        for key, query in resolver["outputArtifactQueries"].items():
            expression = _render(query["filter"], inputs)
            matches = [a for a in self.store if expression and filter_matches(expression, a)]
            resolved[key] = matches[-1:]  # the newest
        return resolved

    # --- containers -----------------------------------------------------------------------

    def _parameter_values(self, task, component, params) -> dict:
        values = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                values[key] = params[source["componentInputParameter"]]
            else:
                values[key] = source["runtimeValue"]["constant"]
        return values

    def _run_container(self, run_id, name, task, component, executor, params, inputs):
        definitions = component.get("inputDefinitions", {}).get("artifacts", {})
        task_dir = os.path.join(self.root, run_id, name)
        out_defs = component.get("outputDefinitions", {}).get("artifacts", {})
        created = {}
        for key, definition in out_defs.items():
            artifact = StoredArtifact(
                name=f"{NAME_PREFIX}{len(self.store) + len(created) + 1}",
                schema_title=schema_title(definition["artifactType"]),
                uri=os.path.join(task_dir, key),
                metadata={},
                run_id=run_id,
                task=name,
            )
            created[key] = (artifact, definition["artifactType"])
        output_file = os.path.join(task_dir, "executor_output.json")
        executor_input = {
            "inputs": {
                "parameterValues": self._parameter_values(task, component, params),
                "artifacts": {
                    key: {"artifacts": [a.runtime(definitions[key]["artifactType"]) for a in arts]}
                    for key, arts in inputs.items()
                },
            },
            "outputs": {
                "artifacts": {
                    key: {"artifacts": [artifact.runtime(artifact_type)]}
                    for key, (artifact, artifact_type) in created.items()
                },
                "outputFile": output_file,
            },
        }
        os.makedirs(task_dir, exist_ok=True)
        container = executor["container"]
        pre = container.get("lifecycle", {}).get("preCacheCheck")
        if pre:
            self._exec(name + " (preCacheCheck)", pre["command"], pre["args"], executor_input)
        self._exec(name, container["command"], container["args"], executor_input)
        with open(output_file) as f:
            reported = json.load(f).get("artifacts", {})
        for key, (artifact, _) in created.items():
            for runtime in reported.get(key, {}).get("artifacts", []):
                artifact.metadata.update(runtime.get("metadata", {}))
            self.store.append(artifact)
        return {key: [artifact] for key, (artifact, _) in created.items()}

    def _exec(self, name: str, command: list, args: list, executor_input: dict) -> None:
        payload = json.dumps(executor_input)
        argv = [sys.executable if c == "python" else c for c in command]
        argv += [payload if a == "{{$}}" else a for a in args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=1200)
        if proc.returncode != 0:
            raise TaskFailed(f"task {name} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
