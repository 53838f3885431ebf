"""``create_pipeline(config)``: the whole metric-learning pipeline; it knows no runner.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator
           -> Transform -> PairGen -> Trainer -> RetrievalEvaluator (+ latest blessed model)
           -> Pusher (only under the blessing condition)
"""

from __future__ import annotations

import os

from tfx import v1 as tfx

from components.example_gen import rows
from components.example_gen.component import labelled_example_gen
from components.pair_gen.component import PairGen
from components.retrieval_evaluator.component import RetrievalEvaluator
from pipeline.config import PipelineConfig
from pipeline.data import split_input

PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
RUN_FN = "trainer_module.run.run_fn"

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


def label_feature_name(config: PipelineConfig) -> str:
    """The label's feature name in the examples (the column name, sanitised)."""
    return rows.sanitize_name(config.label_column)


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


def trainer_config(config: PipelineConfig) -> dict:
    """The Trainer's ``custom_config`` (what ``run_fn`` reads)."""
    return {
        "loss": config.loss,
        "loss_params": config.loss_params,
        "label_column": label_feature_name(config),
        "protocol": config.protocol,
        "embedding_dim": config.embedding_dim,
        "hidden_units": list(config.hidden_units),
        "learning_rate": config.learning_rate,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "train_steps": config.train_steps,
        "batch_sampler": config.batch_sampler,
        "seed": config.seed,
    }


def create_pipeline(
    config: PipelineConfig,
    data_path: str,
    metadata_connection_config=None,
    runtime_parameters: dict | None = None,
) -> tfx.dsl.Pipeline:
    """The pipeline for ``config`` reading ``data_path`` (a file or a folder of files).

    ``runtime_parameters`` (for orchestrators that support them, e.g. KFP v2) may replace
    ``data_root`` (ExampleGen's input folder), ``trainer_config`` (the Trainer's
    ``custom_config`` as JSON: loss, epochs, ...) and ``thresholds`` (the evaluator's, JSON).
    """
    config.validate()
    runtime = runtime_parameters or {}
    if "data_root" in runtime:
        input_base, pattern = runtime["data_root"], "*"
    else:
        input_base, pattern = split_input(data_path)
    label = label_feature_name(config)

    example_gen = labelled_example_gen(
        input_base,
        pattern,
        {
            "label_column": config.label_column,
            "protocol": config.protocol,
            "eval_fraction": config.eval_fraction,
            "eval_classes": config.eval_classes,
            "max_bad_row_fraction": config.max_bad_row_fraction,
            "seed": config.seed,
        },
    )
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
        mode=config.pair_mode,
        triplets_per_anchor=config.triplets_per_anchor,
        num_negatives=int(config.loss_params.get("num_negatives", 1)),
        positive_fraction=config.positive_fraction,
        pk_classes=config.pk_classes,
        pk_examples=max(1, config.batch_size // config.pk_classes),
        block_rows=config.pair_block_rows,
        seed=config.seed,
    )
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=pair_gen.outputs["examples"],
        schema=pair_gen.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(num_steps=max(config.train_steps, 1)),
        eval_args=tfx.proto.EvalArgs(num_steps=1),
        custom_config=runtime.get("trainer_config", trainer_config(config)),
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = RetrievalEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        label_column=label,
        seed=config.seed,
        recall_at_k=config.recall_at_k,
        thresholds=runtime.get("thresholds", config.thresholds),
        comparison_metric=config.comparison_metric,
        comparison_tolerance=config.comparison_tolerance,
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
