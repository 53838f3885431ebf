"""The first task of a compiled pipeline: what this run reads from outside its artifacts.

A Kubeflow cache (open-source: ``backend/src/v2/cacheutils/cache.go`` ``GenerateCacheKey``;
Vertex AI: the same inputs, parameters and container) keys a task on its parameters and input
artifacts, never on files it opens itself. Three tasks open such files: ExampleGen (the data
folder, and the span ledger that leaves rejected spans out), ProductionModel (the production
record at the serving location) and ImportSchemaGen (the curated schema). Left alone, a cached
ExampleGen would replay yesterday's data, and one that never caches makes every later task
run again although its inputs did not change (its output is a new artifact each time).

So ``RunPlan``, never cached and handed the run's id, reads what those files are *now*, without
reading a row, and outputs one digest per file set (``OUTPUTS``); each of the three tasks
takes its digest as a parameter and is cached like every other task:

- ``data_fingerprint``: ExampleGen's ``input_digest`` (sha256 of TFX's fingerprint: file
  count, bytes and mtimes of the spans the window reads);
- ``production_fingerprint``: sha256 of the production record's bytes (``none``: no record);
- ``schema_fingerprint``: sha256 of the schema file's bytes.

Same files, same key: the task and everything after it come from the cache (a retried or
repeated run recomputes nothing it has). A new span, a push or an edited schema: a new key,
and the task and whatever reads its output run again. ExampleGen and ProductionModel check
that what they read still has the planned digest, and fail otherwise (``run again``), so no
cache entry holds content other than the one its key names.

The task's outputs are written as ``parameterValues`` in the executor output file, which both
backends read (open-source: ``component/launcher_v2.go`` ``collectOutputParameters``, "output
metadata file has the highest priority"; Vertex AI: what the KFP SDK's own executor writes,
``kfp/dsl/executor.py``). Written by hand: no TFX component plans a run for a backend without
its driver.

``python -m tfx_metric_learning.kubeflow.run_plan --executor_input '<ExecutorInput JSON>'``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any

from tfx.dsl.io import fileio

from tfx_metric_learning.components.example_gen import inputs as example_gen_inputs
from tfx_metric_learning.components.example_gen import spec as example_gen_spec
from tfx_metric_learning.components.production import record
from tfx_metric_learning.components.production import spec as production_spec

TASK = "RunPlan"
COMMAND = ["python", "-m", "tfx_metric_learning.kubeflow.run_plan"]
ARGS = ["--executor_input", "{{$}}"]
DATA_KEY = example_gen_spec.PLANNED_DIGEST_KEY
PRODUCTION_KEY = production_spec.PLANNED_DIGEST_KEY
SCHEMA_KEY = "schema_fingerprint"
SCHEMA_FILE_KEY = "schema_file"  # ImportSchemaGen's execution property
# ExampleGen's execution properties the plan reads (TFX's standard_component_specs keys)
EXAMPLE_GEN_READS = ("input_base", "input_config", "output_config", "custom_config")
# consumer task -> (the output it takes, the parameters of that task the plan reads)
CONSUMERS = {
    "FileBasedExampleGen": (DATA_KEY, EXAMPLE_GEN_READS),
    "ProductionModel": (PRODUCTION_KEY, (production_spec.SERVING_DIR_KEY,)),
    "ImportSchemaGen": (SCHEMA_KEY, (SCHEMA_FILE_KEY,)),
}


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (any filesystem TensorFlow opens)."""
    if not fileio.exists(path):
        raise FileNotFoundError(f"the schema file {path} does not exist")
    with fileio.open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def plan(parameters: dict[str, Any], outputs: list[str]) -> dict[str, str]:
    """``{output: digest}`` for each of ``outputs``, from the consumers' ``parameters``."""
    found = {}
    for key in outputs:
        if key == DATA_KEY:
            found[key] = example_gen_inputs.input_digest(
                {name: parameters[name] for name in EXAMPLE_GEN_READS}
            )
        elif key == PRODUCTION_KEY:
            found[key] = record.read(parameters[production_spec.SERVING_DIR_KEY]).digest
        elif key == SCHEMA_KEY:
            found[key] = file_digest(parameters[SCHEMA_FILE_KEY])
        else:
            known = sorted(output for output, _ in CONSUMERS.values())
            raise ValueError(f"RunPlan has no output {key!r}: one of {known}")
    return found


def run(executor_input: dict[str, Any]) -> dict[str, str]:
    """Plans the run the ``ExecutorInput`` describes; writes and returns the digests."""
    parameters = executor_input.get("inputs", {}).get("parameterValues", {})
    outputs = executor_input.get("outputs", {})
    found = plan(parameters, sorted(outputs.get("parameters", {})))
    output_file = outputs["outputFile"]
    fileio.makedirs(os.path.dirname(output_file))
    with fileio.open(output_file, "w") as f:
        f.write(json.dumps({"parameterValues": found}))
    return found


def main(argv: list[str] | None = None) -> int:
    """The container's command: plans the run, prints the digests."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--executor_input", required=True, help="the ExecutorInput as JSON")
    args = parser.parse_args(argv)
    for key, value in run(json.loads(args.executor_input)).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
