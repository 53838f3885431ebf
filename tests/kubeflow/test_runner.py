"""The pipeline compiled for KFP v2, checked with the pipeline-spec protos (not strings)."""

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import cli
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline

IMAGE = "registry.example/tfx-metric-learning:test"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    code = cli.main(
        [
            "compile",
            "--data-root",
            "gs://bucket/data",
            "--pipeline-root",
            "gs://bucket/pipeline-root",
            "--output",
            str(out),
            "--image",
            IMAGE,
        ]
    )
    assert code == 0
    job = json.load(open(out))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    return spec


def _local_edges():
    config = PipelineConfig(pipeline_root="gs://bucket/pipeline-root")
    pipeline = create_pipeline(config, "gs://bucket/data")
    edges = set()
    for node in pipeline.components:
        for upstream in node.upstream_nodes:
            edges.add((upstream.id, node.id))
    return {node.id for node in pipeline.components}, edges


def test_every_component_is_a_task_with_the_local_edges(compiled):
    tasks = compiled.root.dag.tasks
    nodes, edges = _local_edges()
    resolver_tasks = {t for t in tasks if t.startswith("latest_blessed_model_resolver")}
    assert set(tasks) - resolver_tasks == nodes - {"latest_blessed_model_resolver"}
    assert resolver_tasks  # the resolver compiles into its query tasks

    def task_of(node_id):
        return {t for t in tasks if t == node_id or (t.startswith(node_id) and t in resolver_tasks)}

    for upstream, downstream in edges:
        for d in task_of(downstream):
            deps = set(tasks[d].dependent_tasks)
            assert task_of(upstream) & deps or upstream == "latest_blessed_model_resolver", (
                upstream,
                downstream,
                deps,
            )


def test_image_is_ours_and_pusher_is_under_the_blessing(compiled):
    for executor in compiled.deployment_spec.fields["executors"].struct_value.fields.values():
        container = executor.struct_value.fields.get("container")
        if container is not None:
            assert container.struct_value.fields["image"].string_value == IMAGE
    condition = compiled.root.dag.tasks["Pusher"].trigger_policy.condition
    assert "RetrievalEvaluator" in condition and "blessed" in condition and "1" in condition


def test_remote_paths_stay_remote(compiled):
    params = compiled.root.input_definitions.parameters
    assert params["data_root"].default_value.string_value == "gs://bucket/data"
    pusher = compiled.root.dag.tasks["Pusher"]
    destination = pusher.inputs.parameters["push_destination"].runtime_value.constant_value
    assert "gs://bucket/pipeline-root/serving_model" in destination.string_value


def test_runtime_parameters_exist_and_feed_the_tasks(tmp_path):
    from kubeflow import runner

    config = PipelineConfig(pipeline_root="gs://bucket/pipeline-root", loss="contrastive", epochs=7)
    job = runner.compile_pipeline(config, "gs://bucket/data", str(tmp_path / "p.json"))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    params = spec.root.input_definitions.parameters
    assert set(params) >= {"data_root", "trainer_config", "thresholds"}
    tasks = spec.root.dag.tasks
    assert (
        tasks["FileBasedExampleGen"].inputs.parameters["input_base"].component_input_parameter
        == "data_root"
    )
    assert (
        tasks["Trainer"].inputs.parameters["custom_config"].component_input_parameter
        == "trainer_config"
    )
    assert (
        tasks["RetrievalEvaluator"].inputs.parameters["thresholds"].component_input_parameter
        == "thresholds"
    )
    defaults = {k: v["stringValue"] for k, v in job["runtimeConfig"]["parameters"].items()}
    trainer = json.loads(defaults["trainer_config"])
    assert trainer["loss_params"] == {
        "margin": 1.0,
        "distance": "l2",
        "factor": 0.5,
        "similar_label": 1,
    }
    assert trainer["loss"] == "contrastive" and trainer["epochs"] == 7
    assert defaults["data_root"] == "gs://bucket/data"
    assert json.loads(defaults["thresholds"]) == {"map_at_r": 0.5}
    # a YAML PipelineSpec carries the same parameters
    yaml_job = runner.compile_pipeline(config, "gs://bucket/data", str(tmp_path / "p.yaml"))
    import yaml

    assert set(
        yaml.safe_load(open(tmp_path / "p.yaml"))["root"]["inputDefinitions"]["parameters"]
    ) == set(params)
    assert yaml_job["pipelineSpec"] == job["pipelineSpec"]
