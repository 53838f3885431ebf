"""``create_pipeline(config)``: the whole metric-learning pipeline; it knows no runner.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator
           -> Transform -> PairGen -> Trainer -> RetrievalEvaluator (+ latest blessed model)
           -> Pusher (only under the blessing condition)
"""

from __future__ import annotations

import os

from tfx import v1 as tfx

from components.example_gen.component import labelled_example_gen
from components.pair_gen.component import PairGen
from components.retrieval_evaluator.component import RetrievalEvaluator
from pipeline.config import PipelineConfig
from pipeline.data import split_input

PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
RUN_FN = "trainer_module.run.run_fn"
# What production may change per run (KFP v2 pipeline parameters); see kubeflow/runner.py.
RUNTIME_PARAMETERS = ("data_root", "training", "evaluation")

COMPONENT_IDS = (
    "FileBasedExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "Transform",
    "PairGen",
    "Trainer",
    "latest_blessed_model_resolver",
    "RetrievalEvaluator",
    "Pusher",
)


def apply_component_beam_args(components: list, config: PipelineConfig) -> None:
    """Adds ``config.component_beam_args[id]`` to the Beam arguments of component ``id``."""
    beam_ids = {c.id: c for c in components if hasattr(c, "with_beam_pipeline_args")}
    for component_id, args in config.component_beam_args.items():
        if component_id not in beam_ids:
            raise ValueError(
                f"no Beam component {component_id!r} for component_beam_args; "
                f"valid: {', '.join(sorted(beam_ids))}"
            )
        beam_ids[component_id].with_beam_pipeline_args(list(args))


def create_pipeline(
    config: PipelineConfig,
    data_path: str,
    metadata_connection_config=None,
    runtime_parameters: dict | None = None,
) -> tfx.dsl.Pipeline:
    """The pipeline for ``config`` reading ``data_path`` (a file or a folder of files).

    ``runtime_parameters`` (for orchestrators that support them, e.g. KFP v2) may replace
    ``data_root`` (ExampleGen's input folder), ``training`` (the training settings as JSON,
    complete) and ``evaluation`` (the evaluation settings as JSON, complete). The training
    parameter goes to PairGen as well as to the Trainer, so PairGen builds what the loss of
    that run consumes.
    """
    config.validate()
    runtime = runtime_parameters or {}
    unknown = sorted(set(runtime) - set(RUNTIME_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown runtime parameter(s) {unknown}; valid: {RUNTIME_PARAMETERS}")
    if "data_root" in runtime:
        input_base, pattern = runtime["data_root"], "*"
    else:
        input_base, pattern = split_input(data_path)
    label = config.ingest.label_feature

    example_gen = labelled_example_gen(input_base, pattern, config.ingest)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={"label_column": label},
        disable_statistics=True,
    )
    pair_gen = PairGen(
        transformed_examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        settings=config.pair_settings,
        training=runtime.get("training"),
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    # warm start: the Trainer gets the latest blessed model (wired only then, so that a cold
    # start stays cached when a new model is blessed)
    base_model = (
        {"base_model": model_resolver.outputs["model"]} if config.training.warm_start else {}
    )
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=pair_gen.outputs["examples"],
        schema=pair_gen.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        # run_fn takes its length from the training settings (epochs, train_steps)
        train_args=tfx.proto.TrainArgs(num_steps=max(config.training.train_steps, 1)),
        eval_args=tfx.proto.EvalArgs(num_steps=1),
        custom_config=runtime.get("training", config.training.resolved().to_dict()),
        **base_model,
    )
    evaluator = RetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        label_column=label,
        settings=runtime.get("evaluation", config.evaluation),
    )
    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)
            ),
        )

    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        transform,
        pair_gen,
        trainer,
        model_resolver,
        evaluator,
        pusher,
    ]
    apply_component_beam_args(components, config)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=os.path.join(config.pipeline_root, "artifacts"),
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )
