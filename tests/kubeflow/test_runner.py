"""The pipeline compiled for KFP v2, checked with the pipeline-spec protos (not strings)."""

import json
import re

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.kubeflow import run_plan
from tfx_metric_learning.pipeline import cli
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.pipeline import RUNTIME_PARAMETERS, create_pipeline
from tfx_metric_learning.trainer_module.settings import TrainingSettings

IMAGE = "registry.example/tfx-metric-learning:test"


def compile_job(out, *extra: str) -> dict:
    """``metric-learning compile`` for the test bucket into ``out``; the PipelineJob JSON."""
    common = ["--data-root", "gs://bucket/data", "--pipeline-root", "gs://bucket/pipeline-root"]
    assert cli.main(["compile", *common, "--output", str(out), "--image", IMAGE, *extra]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    job = compile_job(tmp_path_factory.mktemp("kfp") / "pipeline.json")
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
    # one task per component, and the run's plan: nothing resolves outside a task
    assert set(tasks) == nodes | {run_plan.TASK}
    for upstream, downstream in edges:
        assert upstream in tasks[downstream].dependent_tasks, (upstream, downstream)


def test_image_is_ours_and_training_runs_only_on_accepted_data(compiled):
    for executor in compiled.deployment_spec.fields["executors"].struct_value.fields.values():
        container = executor.struct_value.fields.get("container")
        if container is not None:
            assert container.struct_value.fields["image"].string_value == IMAGE
    accepted = (
        "(inputs.artifacts['_DataValidator.anomalies'].artifacts[0].metadata['blessed'] == 1.0)"
    )
    # Transform and everything after it run only on data the DataValidator accepted; Pusher
    # checks the blessing itself (see pipeline/pipeline.py)
    for task in ("Transform", "PairGen", "Trainer", "RetrievalEvaluator", "Pusher"):
        assert compiled.root.dag.tasks[task].trigger_policy.condition == accepted, task
    pusher = compiled.root.dag.tasks["Pusher"]
    source = pusher.inputs.artifacts["model_blessing"].task_output_artifact
    assert (source.producer_task, source.output_artifact_key) == ("RetrievalEvaluator", "blessing")


def test_remote_paths_stay_remote(compiled):
    params = compiled.root.input_definitions.parameters
    assert params["data_root"].default_value.string_value == "gs://bucket/data"
    pusher = compiled.root.dag.tasks["Pusher"]
    destination = pusher.inputs.parameters["push_destination"].runtime_value.constant
    assert "gs://bucket/pipeline-root/serving_model" in destination.string_value


def test_runtime_parameters_exist_and_feed_the_tasks(tmp_path):
    from tfx_metric_learning.kubeflow import runner

    config = PipelineConfig(
        pipeline_root="gs://bucket/pipeline-root",
        training=TrainingSettings(loss="contrastive", epochs=7),
    )
    job = runner.compile_pipeline(config, "gs://bucket/data", str(tmp_path / "p.json"))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    assert spec.schema_version == "2.1.0"
    params = spec.root.input_definitions.parameters
    assert set(params) == set(RUNTIME_PARAMETERS)
    tasks = spec.root.dag.tasks

    def fed_by(task, key):
        return tasks[task].inputs.parameters[key].component_input_parameter

    assert fed_by("FileBasedExampleGen", "input_base") == "data_root"
    assert fed_by("FileBasedExampleGen", "custom_config") == "ingest"
    assert fed_by("DataValidator", "settings") == "validation"
    assert fed_by("Trainer", "custom_config") == "training"
    assert fed_by("PairGen", "training") == "training"  # PairGen follows the loss of the run
    assert fed_by("RetrievalEvaluator", "settings") == "evaluation"
    defaults = job["runtimeConfig"]["parameterValues"]
    training = TrainingSettings.from_json(defaults["training"], complete=True)
    assert training.loss == "contrastive" and training.epochs == 7
    # a retried Trainer pod resumes from the state kept on the bucket
    assert training.checkpoint_dir == "gs://bucket/pipeline-root/trainer_state"
    # the default holds every loss parameter, so an edited copy is complete
    assert training.loss_params == {
        "margin": 1.0,
        "distance": "l2",
        "factor": 0.5,
        "similar_label": 1,
    }
    evaluation = EvaluationSettings.from_json(defaults["evaluation"], complete=True)
    assert evaluation.thresholds == {"map_at_r": 0.5}
    assert defaults["data_root"] == "gs://bucket/data"
    for name, value in defaults.items():  # the spec carries the same defaults
        assert params[name].default_value.string_value == value and params[name].is_optional
    yaml_job = runner.compile_pipeline(config, "gs://bucket/data", str(tmp_path / "p.yaml"))
    import yaml

    assert yaml.safe_load(open(tmp_path / "p.yaml")) == yaml_job["pipelineSpec"]
    assert yaml_job["pipelineSpec"] == job["pipelineSpec"]


def test_compile_takes_every_training_option(tmp_path):
    out = tmp_path / "p.json"
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r"]
    options = [
        "--loss",
        "triplet_k_negatives",
        "--loss-param",
        "num_negatives=3",
        "--loss-param",
        "margin=0.3",
        "--learning-rate",
        "0.01",
        "--embedding-dim",
        "16",
        "--hidden-units",
        "32,16",
        "--train-steps",
        "5",
        "--triplets-per-anchor",
        "2",
        "--seed",
        "7",
        "--threshold",
        "map_at_r=0.6",
        "--tolerance",
        "0.01",
    ]
    assert cli.main([*args, *options, "--output", str(out)]) == 0
    job = json.load(open(out))
    training = json.loads(job["runtimeConfig"]["parameterValues"]["training"])
    assert training["loss"] == "triplet_k_negatives" and training["seed"] == 7
    assert (
        training["loss_params"]["num_negatives"] == 3 and training["loss_params"]["margin"] == 0.3
    )
    assert training["hidden_units"] == [32, 16] and training["learning_rate"] == 0.01
    evaluation = json.loads(job["runtimeConfig"]["parameterValues"]["evaluation"])
    assert evaluation["thresholds"] == {"map_at_r": 0.6} and evaluation["seed"] == 7
    pair_gen = job["pipelineSpec"]["root"]["dag"]["tasks"]["PairGen"]["inputs"]["parameters"]
    settings = json.loads(pair_gen["settings"]["runtimeValue"]["constant"])
    assert settings["mode"] == "triplets_k" and settings["num_negatives"] == 3
    assert settings["triplets_per_anchor"] == 2 and settings["seed"] == 7


def test_every_trigger_condition_names_inputs_of_its_task(compiled):
    checked = 0
    for name, task in compiled.root.dag.tasks.items():
        if task.trigger_policy.condition:
            keys = set(re.findall(r"inputs\.artifacts\['([^']+)'\]", task.trigger_policy.condition))
            assert keys and keys <= set(task.inputs.artifacts), (name, keys)
            checked += 1
    # Transform, InputBaselines, PairGen, Trainer, RetrievalEvaluator (data), GalleryIndex,
    # Pusher
    assert checked == 7


def test_spans_window_and_schema_compile_into_the_spec(tmp_path):
    job = compile_job(
        tmp_path / "spans.json",
        "--data-pattern", "span-{SPAN}/*.csv", "--window", "3",
        "--schema", "gs://bucket/schema/schema.pbtxt", "--allow-anomalies",
    )  # fmt: skip
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    params = job["runtimeConfig"]["parameterValues"]

    def constant(task, key):
        return tasks[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]

    # the newest span is TFX's rolling range of one span, resolved by ExampleGen's driver
    input_config = json.loads(constant("FileBasedExampleGen", "input_config"))
    assert input_config["splits"][0]["pattern"] == "span-{SPAN}/*.csv"
    assert json.loads(constant("FileBasedExampleGen", "range_config")) == {
        "rolling_range": {"num_spans": 1}
    }
    splits = json.loads(constant("FileBasedExampleGen", "output_config"))["split_config"]
    assert [s["name"] for s in splits["splits"]] == ["train", "eval", "valid", "new_span"]
    assert json.loads(constant("StatisticsGen", "exclude_splits")) == ["train", "eval", "valid"]
    # the Trainer selects its epoch on the validation split, never on eval
    assert json.loads(constant("Trainer", "eval_args"))["splits"] == ["valid"]
    # the window and allow_anomalies change per run: runtime parameters
    ingest = json.loads(params["ingest"])
    assert ingest["window"] == 3 and ingest["data_pattern"] == "span-{SPAN}/*.csv"
    assert ingest["verdicts_dir"] == "gs://bucket/pipeline-root/span_verdicts"
    assert json.loads(params["validation"])["allow_anomalies"] is True
    # the curated schema is imported; nothing infers one
    assert constant("ImportSchemaGen", "schema_file") == "gs://bucket/schema/schema.pbtxt"
    assert "SchemaGen" not in tasks
    # ... cached on the plan's digest of the file, which reads the same constant
    assert constant(run_plan.TASK, run_plan.SCHEMA_FILE_KEY) == "gs://bucket/schema/schema.pbtxt"
    assert tasks["ImportSchemaGen"]["inputs"]["parameters"][run_plan.SCHEMA_KEY] == {
        "taskOutputParameter": {
            "producerTask": run_plan.TASK,
            "outputParameterKey": run_plan.SCHEMA_KEY,
        }
    }
    schema_source = tasks["DataValidator"]["inputs"]["artifacts"]["schema"]
    assert schema_source["taskOutputArtifact"]["producerTask"] == "ImportSchemaGen"


def test_local_paths_are_refused_unless_allowed(tmp_path, capsys):
    out = tmp_path / "p.yaml"
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r"]
    schema = ["--schema", str(tmp_path / "schema.pbtxt")]
    assert cli.main([*args, *schema, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--schema {tmp_path / 'schema.pbtxt'} is a local path" in err
    assert "--allow-local-paths" in err and not out.exists()
    assert cli.main([*args, *schema, "--allow-local-paths", "--output", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "every pod must mount it" in warnings[0]
    assert cli.main([*args, "--schema", "gs://b/schema.pbtxt", "--output", str(out)]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_a_root_tensorflow_cannot_write_is_refused(tmp_path, capsys):
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "minio://mlpipeline/v2"]
    assert cli.main([*args, "--output", str(tmp_path / "p.yaml")]) == 2
    assert "no filesystem for minio://" in capsys.readouterr().err


def test_the_spec_is_complete_by_itself(compiled, tmp_path):
    spec = json_format.MessageToDict(compiled)
    assert spec["defaultPipelineRoot"] == "gs://bucket/pipeline-root/artifacts"
    tasks, executors = spec["root"]["dag"]["tasks"], spec["deploymentSpec"]["executors"]
    for name, task in tasks.items():
        container = executors[spec["components"][name]["executorLabel"]]["container"]
        command = ["python", "-m", "tfx_metric_learning.kubeflow.entrypoint"]
        assert container["command"] == (run_plan.COMMAND if name == run_plan.TASK else command)
        assert "lifecycle" not in container  # no preCacheCheck: ExampleGen needs no driver
        resources = container["resources"]
        assert resources["cpuLimit"] >= 1 and resources["memoryLimit"] >= 2, name
        # only the plan always runs (the run's id makes its key new); every other task may
        # come from a cache, those that read outside files keyed on the plan's digest of them
        planned = name == run_plan.TASK
        assert task.get("cachingOptions", {}).get("enableCache", False) is not planned, name
        run_id = task["inputs"]["parameters"].get("pipeline_run_id", {})
        assert (
            run_id.get("runtimeValue", {}).get("constant") == "{{$.pipeline_job_uuid}}"
        ) is planned
    plan = spec["components"][run_plan.TASK]["outputDefinitions"]["parameters"]
    for consumer, (output, reads) in run_plan.CONSUMERS.items():
        if consumer == "ImportSchemaGen":  # no curated schema in this spec
            assert consumer not in tasks and output not in plan
            continue
        assert output in plan
        assert run_plan.TASK in tasks[consumer]["dependentTasks"]
        parameters = tasks[consumer]["inputs"]["parameters"]
        assert parameters[output] == {
            "taskOutputParameter": {"producerTask": run_plan.TASK, "outputParameterKey": output}
        }
        for key in reads:  # the plan resolves exactly what its consumer will read
            assert tasks[run_plan.TASK]["inputs"]["parameters"][key] == parameters[key]
    pusher = tasks["Pusher"]["inputs"]["parameters"]["pipeline_run"]
    assert pusher["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"


def test_the_trainer_gets_the_gpus_asked_for_on_each_backend(tmp_path):
    kfp = compile_job(tmp_path / "kfp.json", "--trainer-gpus", "2", "--cpu", "Trainer=16")
    trainer = kfp["pipelineSpec"]["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert trainer["resources"]["accelerator"] == {"type": "nvidia.com/gpu", "count": 2}
    assert trainer["resources"]["cpuLimit"] == 16
    vertex = compile_job(
        tmp_path / "v.json",
        "--target", "vertex", "--trainer-gpus", "1", "--trainer-accelerator", "NVIDIA_TESLA_T4",
    )  # fmt: skip
    trainer = vertex["pipelineSpec"]["deploymentSpec"]["executors"]["Trainer_executor"]
    assert trainer["container"]["resources"]["accelerator"] == {
        "type": "NVIDIA_TESLA_T4",
        "count": 1,
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "vertex", "--trainer-gpus", "1"], "needs --trainer-accelerator"),
        (
            ["--target", "vertex", "--trainer-gpus", "1", "--trainer-accelerator", "T4"],
            "not a Vertex",
        ),
        (["--trainer-gpus", "1", "--trainer-accelerator", "NVIDIA_TESLA_T4"], "not a Kubernetes"),
        (["--trainer-accelerator", "nvidia.com/gpu"], "needs --trainer-gpus"),
        (["--cpu", "Trainr=4"], "unknown stage(s) ['Trainr']"),
        (["--target", "vertex", "--trainer-workers", "2"], "needs --project and --region"),
    ],
)
def test_resources_a_backend_cannot_give_are_refused(tmp_path, capsys, extra, message):
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r", *extra]
    assert cli.main([*args, "--output", str(tmp_path / "p.json")]) == 2
    assert message in capsys.readouterr().err


def test_a_remote_beam_runner_runs_the_pipeline_image(tmp_path):
    job = compile_job(
        tmp_path / "df.json", "--beam-arg=--runner=DataflowRunner", "--beam-arg=--project=p"
    )
    args = job["pipelineSpec"]["deploymentSpec"]["executors"]["Transform_executor"]["container"]
    assert f"--sdk_container_image={IMAGE}" in args["args"]
    local = compile_job(tmp_path / "local.json")
    args = local["pipelineSpec"]["deploymentSpec"]["executors"]["Transform_executor"]["container"]
    assert not any(a.startswith("--sdk_container_image") for a in args["args"])


def test_kfp_sdk_loads_the_yaml_and_nests_it_in_a_pipeline(tmp_path):
    from kfp import compiler, components, dsl

    spec_path = tmp_path / "pipeline.yaml"
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r"]
    assert cli.main([*args, "--output", str(spec_path)]) == 0
    component = components.load_component_from_file(str(spec_path))
    assert set(component.component_spec.inputs) == set(RUNTIME_PARAMETERS)
    assert all(i.optional for i in component.component_spec.inputs.values())

    @dsl.pipeline(name="nightly-metric-learning")
    def nightly(data_root: str = "gs://b/d"):
        component(data_root=data_root)

    out = tmp_path / "outer.yaml"
    compiler.Compiler().compile(nightly, str(out))
    outer = yaml.safe_load(open(out))
    assert outer["root"]["dag"]["tasks"]  # the nested pipeline is a task of the outer one
    (nested,) = [c for c in outer["components"].values() if "dag" in c]
    assert "Trainer" in nested["dag"]["tasks"] and "PairGen" in nested["dag"]["tasks"]


def test_warm_start_feeds_the_trainer_the_production_model(tmp_path, compiled):
    job = compile_job(tmp_path / "warm.json", "--warm-start")
    trainer = job["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]
    source = trainer["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert (source["producerTask"], source["outputArtifactKey"]) == ("ProductionModel", "model")
    training = json.loads(job["runtimeConfig"]["parameterValues"]["training"])
    assert training["warm_start"] is True
    # a cold start (the default) does not wire it, so the Trainer stays cacheable
    assert "base_model" not in compiled.root.dag.tasks["Trainer"].inputs.artifacts
    evaluator = compiled.root.dag.tasks["RetrievalEvaluator"].inputs.artifacts["baseline_model"]
    assert evaluator.task_output_artifact.producer_task == "ProductionModel"


def test_a_comparison_compiles_to_parallel_branches_gathered_by_the_leaderboard(tmp_path):
    job = compile_job(
        tmp_path / "compare.json",
        "--compare",
        "--losses",
        "triplet_semihard,contrastive",
        "--candidate",
        "supcon temperature=0.2",
        "--seeds",
        "2",
        "--tuning-trials",
        "3",
    )
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    tasks = spec.root.dag.tasks
    params = spec.root.input_definitions.parameters
    assert set(params) == {"data_root", "ingest", "validation", "evaluation"}  # no training
    trainers = {t for t in tasks if t.startswith("Trainer_")}
    evaluators = {t for t in tasks if t.startswith("RetrievalEvaluator_")}
    assert len(trainers) == len(evaluators) == 6  # 3 candidates x 2 seeds
    assert "Trainer" not in tasks
    shared = {"FileBasedExampleGen", "StatisticsGen", "SchemaGen", "DataValidator", "Transform"}
    order = sorted(evaluators)
    for trainer in trainers:
        deps = set(tasks[trainer].dependent_tasks)
        # a branch waits for the shared tasks, its PairGen and its candidate's Tuner (on the
        # first seed's PairGen), and for the branch --max-parallel-branches (4) before it
        others = deps - shared - {t for t in deps if t.startswith("PairGen_")}
        candidate = trainer.removeprefix("Trainer_").rsplit("_s", 1)[0]
        assert f"Tuner_{candidate}_s42" in others, deps
        assert all(o.startswith(("Tuner_", "RetrievalEvaluator_")) for o in others), deps
        training = json.loads(
            tasks[trainer].inputs.parameters["custom_config"].runtime_value.constant.string_value
        )
        assert training["seed"] == int(trainer.rsplit("_s", 1)[1])
    # 6 branches, at most 4 at once: each of the last two waits for one of the first two
    waiting = {
        t: {d for d in tasks[t].dependent_tasks if d.startswith("RetrievalEvaluator_")}
        for t in tasks
        if t.startswith(("Trainer_", "Tuner_"))
    }
    assert sum(len(v) for v in waiting.values()) == 2 and len(order) == 6
    tuners = {t for t in tasks if t.startswith("Tuner_")}
    assert len(tuners) == 3  # one per candidate, whatever the seeds
    for tuner in tuners:
        config = json.loads(
            tasks[tuner].inputs.parameters["custom_config"].runtime_value.constant.string_value
        )
        assert config["tuning_trials"] == 3 and "learning_rate" in config["tuning_space"]
    leaderboard = set(tasks["Leaderboard"].dependent_tasks)
    assert trainers | evaluators <= leaderboard
    # the winner goes through the usual blessing against production and the Pusher
    evaluator = tasks["RetrievalEvaluator"]
    model = evaluator.inputs.artifacts["model"].task_output_artifact
    assert (model.producer_task, model.output_artifact_key) == ("Leaderboard", "model")
    assert "baseline_model" in evaluator.inputs.artifacts
    assert set(tasks["Pusher"].dependent_tasks) >= {"Leaderboard", "RetrievalEvaluator"}
    accepted = (
        "(inputs.artifacts['_DataValidator.anomalies'].artifacts[0].metadata['blessed'] == 1.0)"
    )
    for task in [*trainers, "Leaderboard", "Pusher"]:
        assert tasks[task].trigger_policy.condition == accepted, task


def test_a_comparison_without_a_validation_split_is_refused(tmp_path, capsys):
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r", "--compare"]
    code = cli.main([*args, "--validation-fraction", "0", "--output", str(tmp_path / "x.json")])
    assert code == 2
    assert "--validation-fraction must be > 0" in capsys.readouterr().err
