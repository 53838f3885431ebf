"""A compiled task's container entrypoint, run locally on local folders.

The cluster runs ``command + args`` of each task's executor with the KFP ``ExecutorInput``
substituted for ``{{$}}``. Here the PairGen task of the compiled spec runs exactly that way,
with its compiled parameter values, on a tiny Transform output made by the real TFT.
"""

import json
import os
import subprocess
import sys

from pipeline import cli
from tests.transform_helpers import analyze_and_transform, write_splits


def _artifact(name, schema_title, uri, metadata=None):
    return {
        "artifacts": [
            {
                "name": name,
                "type": {"schemaTitle": schema_title},
                "uri": uri,
                "metadata": metadata or {},
            }
        ]
    }


def test_pair_gen_task_runs_through_the_kfp_v2_entrypoint(tmp_path):
    spec_path = tmp_path / "pipeline.json"
    assert (
        cli.main(
            [
                "compile",
                "--data-root",
                "gs://bucket/data",
                "--pipeline-root",
                "gs://bucket/pipeline-root",
                "--loss",
                "triplet",
                "--output",
                str(spec_path),
            ]
        )
        == 0
    )
    spec = json.load(open(spec_path))["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"]["PairGen"]
    container = spec["deploymentSpec"]["executors"]["PairGen_executor"]["container"]

    rows = [{"a": float(i), "b": float(i % 5), "label": "xyz"[i % 3]} for i in range(30)]
    out = analyze_and_transform(rows, ["a", "b"], str(tmp_path / "transform_graph"))
    write_splits(str(tmp_path / "transformed"), {"train": out[:21], "eval": out[21:]})

    parameters = {
        k: v["runtimeValue"]["constantValue"] for k, v in task["inputs"]["parameters"].items()
    }
    executor_input = {
        "inputs": {
            "parameters": parameters,
            "artifacts": {
                "transformed_examples": _artifact(
                    "transformed",
                    "tfx.Examples",
                    str(tmp_path / "transformed"),
                    {"split_names": json.dumps(["train", "eval"])},
                ),
                "transform_graph": _artifact(
                    "graph", "tfx.TransformGraph", str(tmp_path / "transform_graph")
                ),
            },
        },
        "outputs": {
            "artifacts": {
                "examples": _artifact(
                    "examples", "tfx.Examples", str(tmp_path / "out" / "examples")
                ),
                "schema": _artifact("schema", "tfx.Schema", str(tmp_path / "out" / "schema")),
            },
            "outputFile": str(tmp_path / "task" / "executor_output.json"),
        },
    }
    os.makedirs(tmp_path / "task")
    command = [sys.executable if c == "python" else c for c in container["command"]]
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    proc = subprocess.run(
        command + args,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert parameters["mode"]["stringValue"] == "triplets"
    stats = json.load(open(tmp_path / "out" / "examples" / "pair_gen_stats.json"))
    assert stats["mode"] == "triplets" and stats["splits"]["train"]["examples"] == 21 * 4
    assert os.path.exists(tmp_path / "out" / "schema" / "schema.pbtxt")
    output = json.load(open(tmp_path / "task" / "executor_output.json"))
    assert "examples" in output["artifacts"]
