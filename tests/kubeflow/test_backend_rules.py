"""Every spec ``compile`` writes passes the open-source backend's rules; breaking one is named.

The rules and the kubeflow/pipelines files they come from are listed in
``kubeflow/backend_rules.py``; ``compile`` itself refuses a spec that breaks one.
"""

import copy
import json

import pytest

from tfx_metric_learning.kubeflow import backend_rules
from tfx_metric_learning.pipeline import cli

COMMON = ["--data-root", "gs://b/d", "--pipeline-root", "gs://b/r"]
SPECS = {
    "default": [],
    "spans": ["--data-pattern", "span-{SPAN}/*.csv", "--schema", "gs://b/s.pbtxt"],
    "warm start": ["--warm-start"],
    "compare": ["--compare", "--losses", "triplet_semihard,contrastive", "--tuning-trials", "2"],
    "resources": ["--trainer-gpus", "2", "--cpu", "Trainer=16", "--memory", "Transform=32"],
    "vertex": ["--target", "vertex", "--trainer-gpus", "1", "--trainer-accelerator", "NVIDIA_L4"],
    "multi-worker": ["--trainer-workers", "3", "--trainer-gpus", "1"],
    "vertex multi-worker": [
        "--target", "vertex", "--trainer-workers", "2", "--project", "p", "--region", "r",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    out = {}
    for name, extra in SPECS.items():
        path = tmp_path_factory.mktemp("specs") / "p.json"
        assert cli.main(["compile", *COMMON, *extra, "--output", str(path)]) == 0, name
        out[name] = json.loads(path.read_text())["pipelineSpec"]
    return out


@pytest.mark.parametrize("name", SPECS)
def test_every_compiled_spec_passes_the_open_source_rules(specs, name):
    spec = specs[name]
    assert backend_rules.problems(spec, kubernetes_accelerators="vertex" not in name) == []
    executors = spec["deploymentSpec"]["executors"].values()
    assert all(set(e) == {"container"} for e in executors)  # no resolver, no importer
    assert spec["defaultPipelineRoot"] == "gs://b/r/artifacts"


def test_a_resolver_executor_is_named(specs):
    spec = copy.deepcopy(specs["default"])
    spec["deploymentSpec"]["executors"]["x"] = {"resolver": {"outputArtifactQueries": {}}}
    (problem,) = backend_rules.problems(spec)
    assert "executor x is ['resolver']" in problem and "only container and importer" in problem


def test_a_condition_on_an_undeclared_input_is_named(specs):
    spec = copy.deepcopy(specs["default"])
    task = spec["root"]["dag"]["tasks"]["Transform"]
    task["triggerPolicy"]["condition"] = "inputs.artifacts['elsewhere'].artifacts[0].uri == ''"
    (problem,) = backend_rules.problems(spec)
    assert "task Transform: its condition reads input 'elsewhere'" in problem


def test_a_spec_without_pipeline_root_or_with_a_dangling_dependency_is_named(specs):
    spec = copy.deepcopy(specs["default"])
    del spec["defaultPipelineRoot"]
    spec["root"]["dag"]["tasks"]["Pusher"]["dependentTasks"].append("Nowhere")
    problems = backend_rules.problems(spec)
    assert any("MinIO default" in p for p in problems)
    assert any("depends on 'Nowhere'" in p for p in problems)


def test_a_vertex_accelerator_name_breaks_the_kubernetes_rule(specs):
    assert any("Kubernetes resource name" in p for p in backend_rules.problems(specs["vertex"]))


def test_a_multi_worker_trainer_submits_to_the_engine_and_its_pod_only_watches(specs):
    spec = specs["multi-worker"]
    container = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert "tfx_metric_learning.kubeflow.distributed.Executor" in container["args"]
    assert "accelerator" not in container["resources"]  # the replicas get the GPUs
    plan = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["distributed_training"]
    plan = json.loads(plan["runtimeValue"]["constant"])
    assert plan["workers"] == 3 and plan["accelerators"] == 1 and plan["backend"] == "kfp"
    assert plan["accelerator"] == "nvidia.com/gpu"
