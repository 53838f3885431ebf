"""``create_pipeline(config)``: the whole metric-learning pipeline; it knows no runner.

ExampleGen -> StatisticsGen -> SchemaGen (or ImportSchemaGen of a curated schema file)
           -> DataValidator (schema, and drift against the last accepted span)
           -> Transform -> PairGen -> Trainer -> RetrievalEvaluator (+ the production model)
           -> GalleryIndex (a blessed model's gallery, indexed, with its match threshold)
           -> Pusher (pushes only a blessed model, with its index, and records it as production)

What is in production is what was pushed: ``ProductionModel`` reads the record the Pusher
keeps at the serving location (``components/production``) and hands the evaluator its
baseline and, with warm start, the Trainer its weights. The same mechanism runs locally and
on every Kubeflow backend; no ML Metadata query (resolver) is compiled.

Transform and everything after it run only when the DataValidator accepted the data (one
``Cond``). Pusher is not under a second ``Cond`` on the blessing: TFX evaluates a node's
conditions in no fixed order, and one on the blessing of an evaluator the first condition
skipped fails the node instead of skipping it. Pusher checks the blessing itself, as TFX's
Pusher does, and records ``pushed = 0`` for a model not blessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

# the modules behind ``tfx.v1``'s names, imported directly: ``tfx.v1`` also imports its Google
# Cloud extensions (google.cloud.aiplatform), about 4 s of every run's start-up
from tfx.components import SchemaGen, StatisticsGen, Trainer, Transform, Tuner
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.experimental.conditionals.conditional import Cond
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import standard_component_specs

from tfx_metric_learning.components.data_validator import spec as data_validator_spec
from tfx_metric_learning.components.data_validator.component import DataValidator
from tfx_metric_learning.components.example_gen.component import labelled_example_gen
from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.components.gallery_index.component import GalleryIndex
from tfx_metric_learning.components.input_baselines import spec as input_baselines_spec
from tfx_metric_learning.components.input_baselines.component import InputBaselines
from tfx_metric_learning.components.leaderboard import spec as leaderboard_spec
from tfx_metric_learning.components.leaderboard.component import Branch, Leaderboard
from tfx_metric_learning.components.pair_gen import spec as pair_gen_spec
from tfx_metric_learning.components.pair_gen.component import PairGen
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.production.component import ProductionModel
from tfx_metric_learning.components.pusher.component import Pusher
from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec
from tfx_metric_learning.components.retrieval_evaluator.component import RetrievalEvaluator
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.core.splits import EVAL, TRAIN, VALID
from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.pipeline import beam_policy
from tfx_metric_learning.pipeline.candidates import Candidate, branch_id, require_validation_split
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.data import split_input
from tfx_metric_learning.trainer_module import spec as trainer_spec
from tfx_metric_learning.trainer_module import tuning_space

RUN_FN = "tfx_metric_learning.trainer_module.run.run_fn"
TUNER_FN = "tfx_metric_learning.trainer_module.tuning.tuner_fn"
# What production may change per run (KFP v2 pipeline parameters); see kubeflow/runner.py.
RUNTIME_PARAMETERS = ("data_root", "ingest", "validation", "training", "evaluation")
# ... and what it may change in a comparison, whose branches' training settings are compiled in
COMPARE_RUNTIME_PARAMETERS = ("data_root", "ingest", "validation", "evaluation")
# The node that reads what is in production (a file outside the pipeline's artifacts).
PRODUCTION_MODEL = "ProductionModel"
# Nodes whose result depends on more than their inputs and properties: no cache may replay
# them (the local runner and the Kubeflow compiler switch caching off for these ids).
ALWAYS_RUN = (PRODUCTION_MODEL,)
EVALUATION = evaluator_spec.EVALUATION_KEY


# Beam components whose work is one model's TensorFlow calls: in-process when the others run
# on local worker processes (``beam_policy.model_embedding_args``).
MODEL_EMBEDDING = (RetrievalEvaluator, GalleryIndex)


def apply_component_beam_args(components: list, config: PipelineConfig) -> None:
    """Per-component Beam arguments, after the pipeline's (so they win).

    ``beam_policy.model_embedding_args`` for the ``MODEL_EMBEDDING`` kinds, then
    ``config.component_beam_args[id]`` for component ``id``.
    """
    in_process = beam_policy.model_embedding_args(config.beam_args)
    for component in components:
        if in_process and isinstance(component, MODEL_EMBEDDING):
            component.with_beam_pipeline_args(in_process)
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
) -> Pipeline:
    """The pipeline for ``config`` reading ``data_path`` (a file or a folder of files).

    ``runtime_parameters`` (for orchestrators that support them, e.g. KFP v2) may replace
    ``data_root`` (ExampleGen's input folder), and as JSON holding every setting of a stage:
    ``ingest`` (e.g. the ``window``), ``validation`` (e.g. ``allow_anomalies``), ``training``
    and ``evaluation``. The training parameter goes to PairGen as well as to the Trainer, so
    PairGen builds what the loss of that run consumes. What shapes the pipeline itself (a
    span pattern or not, a schema file or not) is compiled in.
    """
    config.validate()
    runtime = Runtime(config, runtime_parameters or {})
    input_base, pattern = _input(data_path, runtime.parameters, RUNTIME_PARAMETERS)
    head = _validated_examples(config, input_base, pattern, runtime)
    production = _production(config)
    with Cond(head.accepted() == 1):
        downstream = _training_and_push(config, head, production, runtime)
    return _pipeline(
        config, [*head.components, production, *downstream], metadata_connection_config
    )


def _input(data_path: str, runtime: dict, allowed: tuple[str, ...]) -> tuple[str, str]:
    """ExampleGen's ``(input folder, pattern)``; refuses runtime parameters not ``allowed``."""
    unknown = sorted(set(runtime) - set(allowed))
    if unknown:
        raise ValueError(f"unknown runtime parameter(s) {unknown}; valid: {allowed}")
    if "data_root" in runtime:
        return runtime["data_root"], "*"
    return split_input(data_path)


@dataclasses.dataclass(frozen=True)
class ValidatedExamples:
    """The head of every pipeline: the examples, their statistics, schema and verdict."""

    example_gen: Any
    statistics_gen: Any
    schema_gen: Any
    data_validator: Any

    @property
    def components(self) -> list:
        return [self.example_gen, self.statistics_gen, self.schema_gen, self.data_validator]

    @property
    def examples(self):
        return self.example_gen.outputs[standard_component_specs.EXAMPLES_KEY]

    def accepted(self):
        """The DataValidator's verdict as a placeholder (1 = accepted), for ``Cond``."""
        anomalies = self.data_validator.outputs[data_validator_spec.ANOMALIES_KEY]
        return anomalies.future()[0].custom_property(data_validator_spec.BLESSED_PROPERTY)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Which settings a component gets: the one resolver of compiled vs runtime settings.

    A stage's runtime parameter when the orchestrator supplies one (KFP v2: a placeholder
    holding the stage's JSON), else the compiled config's.
    """

    config: PipelineConfig
    parameters: dict

    def settings(self, stage: str):
        """The ``stage``'s settings: its runtime parameter, else the config's."""
        return self.parameters.get(stage, getattr(self.config, stage))

    def override(self, stage: str):
        """The ``stage``'s runtime parameter, or None (the component uses its own settings)."""
        return self.parameters.get(stage)

    def training(self):
        """The Trainer's settings: the runtime parameter, else the config's, resolved."""
        return self.parameters.get("training", self.config.training.resolved().to_dict())


def _validated_examples(
    config: PipelineConfig, input_base: str, pattern: str, runtime: Runtime
) -> ValidatedExamples:
    """ExampleGen -> StatisticsGen -> SchemaGen (or ImportSchemaGen) -> DataValidator."""
    example_gen = labelled_example_gen(
        input_base, pattern, config.ingest, runtime_settings=runtime.override("ingest")
    )
    statistics_gen = _statistics_gen(config, example_gen)
    schema_gen = schema_component(config, statistics_gen)
    data_validator = DataValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        examples=example_gen.outputs[standard_component_specs.EXAMPLES_KEY],
        settings=runtime.settings("validation"),
    )
    return ValidatedExamples(example_gen, statistics_gen, schema_gen, data_validator)


def _production(config: PipelineConfig) -> object:
    """What is in production at the serving location: the baseline a new model must match."""
    return ProductionModel(serving_dir=config.serving_dir).with_id(PRODUCTION_MODEL)


def create_compare_pipeline(
    config: PipelineConfig,
    data_path: str,
    candidates: list[Candidate],
    seeds: list[int],
    deploy: bool = True,
    metadata_connection_config=None,
    runtime_parameters: dict | None = None,
    tuning_trials: int = 0,
    max_parallel_branches: int = 0,
) -> Pipeline:
    """The comparison of ``candidates`` over ``seeds``, one TFX pipeline.

    Shared: ExampleGen, StatisticsGen, SchemaGen, DataValidator, Transform and InputBaselines
    (the raw and classic baselines every evaluator reads). Per (candidate, seed) branch, with
    ids ending in ``candidates.branch_id``: PairGen (one per distinct PairGen setting and
    seed: candidates whose losses consume the same examples share it), Trainer (selecting
    its epoch on the validation split) and RetrievalEvaluator (test metrics; its own blessing
    is not used). Then the Leaderboard
    gathers every branch and outputs the winner's model; with ``deploy`` that model goes
    through the usual RetrievalEvaluator (against the production model) and Pusher. No
    branch depends on another, so Kubeflow runs them in parallel.

    With ``tuning_trials`` > 0 each candidate is first tuned by TFX's ``Tuner`` (KerasTuner
    random search of that many trials on validation MAP@R, ``trainer_module/tuning.py``) on
    its first seed's PairGen output, and every seed's Trainer trains with the best trial's
    values: the same budget for every candidate, so none loses for want of its learning rate
    or margin.

    ``runtime_parameters`` may replace the data side only (``COMPARE_RUNTIME_PARAMETERS``):
    each branch's training settings are compiled in, they make the branches.

    ``max_parallel_branches`` > 0 bounds how many branches run at once where branches run in
    parallel (Kubeflow): the first Tuner or Trainer of branch ``i`` waits for the evaluator of
    branch ``i - max_parallel_branches`` (an ordering edge, no data).
    """
    config.validate()
    require_validation_split(config.ingest.validation_fraction)
    if not candidates or not seeds:
        raise SettingsError("a comparison needs at least one candidate and one seed")
    runtime = Runtime(config, runtime_parameters or {})
    input_base, pattern = _input(data_path, runtime.parameters, COMPARE_RUNTIME_PARAMETERS)
    head = _validated_examples(config, input_base, pattern, runtime)
    production = _production(config) if deploy else None
    with Cond(head.accepted() == 1):
        transform = _transform(config, head.example_gen, head.schema_gen)
        baselines = _input_baselines(config, head, transform, runtime)
        nodes: list = [transform, baselines]
        branches = []
        pair_gens: dict[str, object] = {}  # PairGen settings (JSON) -> the PairGen making them
        branch_ends: list = []  # each branch's evaluator, in order
        for candidate in candidates:
            tuner = None
            for seed in seeds:
                training = candidate.settings(config.training, seed)
                pair_gen = _shared_pair_gen(config, training, seed, transform, pair_gens, nodes)
                suffix = branch_id(candidate.label, seed)
                first = None  # the branch's first node, when it is a new Tuner
                if tuning_trials > 0 and tuner is None:
                    tuner = _tuner(candidate, training, tuning_trials, pair_gen, transform)
                    first = tuner.with_id(f"Tuner_{suffix}")
                    nodes.append(first)
                tuned = {"hyperparameters": tuner.outputs["best_hyperparameters"]} if tuner else {}
                trainer = _trainer(config, training.to_dict(), pair_gen, transform, tuned).with_id(
                    f"Trainer_{suffix}"
                )
                evaluator = RetrievalEvaluator(
                    examples=head.examples,
                    model=trainer.outputs[standard_component_specs.MODEL_KEY],
                    label_column=config.ingest.label_feature,
                    settings=runtime.settings("evaluation"),
                    baselines=_baselines_of(baselines),
                ).with_id(f"RetrievalEvaluator_{suffix}")
                nodes += [trainer, evaluator]
                if max_parallel_branches > 0 and len(branch_ends) >= max_parallel_branches:
                    (first or trainer).add_upstream_node(branch_ends[-max_parallel_branches])
                branch_ends.append(evaluator)
                branches.append(
                    Branch(
                        candidate=candidate.label,
                        seed=seed,
                        model=trainer.outputs[standard_component_specs.MODEL_KEY],
                        model_run=trainer.outputs[trainer_spec.MODEL_RUN_KEY],
                        evaluation=evaluator.outputs[EVALUATION],
                    )
                )
        leaderboard = Leaderboard(branches, leaderboard_metrics(config.evaluation))
        nodes.append(leaderboard)
        if deploy:
            nodes += _bless_and_push(
                config,
                head,
                leaderboard.outputs[leaderboard_spec.MODEL_KEY],
                production,
                runtime,
                baselines=_baselines_of(baselines),
            )
    reader = [production] if deploy else []
    return _pipeline(config, [*head.components, *reader, *nodes], metadata_connection_config)


def _shared_pair_gen(config, training, seed: int, transform, made: dict, nodes: list) -> object:
    """The PairGen a branch's Trainer reads: one per distinct PairGen setting and seed.

    Candidates whose losses consume the same examples share it; a new one is added to
    ``made`` (keyed by its settings' JSON) and ``nodes``.
    """
    pairs = dataclasses.replace(config.pairs, seed=seed).following(training)
    key = pairs.to_json()
    if key not in made:
        made[key] = PairGen(
            transformed_examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            settings=pairs,
        ).with_id(f"PairGen_{pairs.mode}_{_digest(key)}_s{seed}")
        nodes.append(made[key])
    return made[key]


def _tuner(candidate: Candidate, training, trials: int, pair_gen, transform) -> object:
    """TFX's Tuner of ``candidate``: ``trials`` trials over what the candidate did not set."""
    fixed = {*candidate.training, *candidate.loss_params}
    space = tuning_space.search_space(training, fixed)
    return Tuner(
        tuner_fn=TUNER_FN,
        examples=pair_gen.outputs[pair_gen_spec.EXAMPLES_KEY],
        schema=pair_gen.outputs[pair_gen_spec.SCHEMA_KEY],
        transform_graph=transform.outputs["transform_graph"],
        train_args=trainer_pb2.TrainArgs(num_steps=1),  # trials take their length from settings
        eval_args=trainer_pb2.EvalArgs(splits=[VALID], num_steps=1),  # scored on valid only
        custom_config={
            **training.to_dict(),
            tuning_space.TRIALS_KEY: trials,
            tuning_space.SPACE_KEY: space,
        },
    )


def leaderboard_metrics(evaluation: EvaluationSettings) -> list[str]:
    """The test metrics a leaderboard reports: the ranking ones, Recall@k and ROC AUC."""
    return [
        "map_at_r",
        "r_precision",
        "precision_at_1",
        *[f"recall_at_{k}" for k in sorted(set(evaluation.recall_at_k))],
        "roc_auc",
    ]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def create_schema_pipeline(
    config: PipelineConfig, data_path: str, metadata_connection_config=None
) -> Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen: the schema command's pipeline.

    Same pipeline name, node ids and settings as ``create_pipeline``, so a later run reuses
    these executions from the cache.
    """
    config.validate()
    input_base, pattern = split_input(data_path)
    example_gen = labelled_example_gen(input_base, pattern, config.ingest)
    statistics_gen = _statistics_gen(config, example_gen)
    schema_gen = SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    components = [example_gen, statistics_gen, schema_gen]
    return _pipeline(config, components, metadata_connection_config)


def _pipeline(config: PipelineConfig, components: list, metadata_connection_config) -> object:
    """The TFX pipeline of ``components`` under the config's name, root and Beam arguments."""
    apply_component_beam_args(components, config)
    return Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=os.path.join(config.pipeline_root, "artifacts"),
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )


def _statistics_gen(config: PipelineConfig, example_gen) -> object:
    """StatisticsGen; with spans, of the newest span only (what validation checks)."""
    return StatisticsGen(
        examples=example_gen.outputs["examples"],
        exclude_splits=[TRAIN, EVAL, *_valid(config)] if config.ingest.uses_spans else None,
    )


def _valid(config: PipelineConfig) -> list[str]:
    """The validation split, when the ingest settings make one."""
    return [VALID] if config.ingest.validation_fraction > 0 else []


def schema_component(config: PipelineConfig, statistics_gen) -> object:
    """ImportSchemaGen of the curated schema file, or SchemaGen inferring one (no file)."""
    if config.schema_file:
        return ImportSchemaGen(schema_file=config.schema_file).with_id("ImportSchemaGen")
    return SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)


def _trainer_eval_splits(config: PipelineConfig) -> list[str]:
    """The split TFX's Trainer is given as its eval split: valid, when there is one.

    ``run_fn`` selects its epoch on valid; without one it reads no eval data at all, but TFX's
    Trainer still needs a split of its examples to name (``fn_args_utils.get_common_fn_args``
    refuses one they lack), so the eval split is named.
    """
    return _valid(config) or [EVAL]


def _transform(config: PipelineConfig, example_gen, schema_gen) -> object:
    """Transform: analysed on train, applied to the splits PairGen and the Trainer read.

    Train and the Trainer's eval split (``_trainer_eval_splits``). The eval split is the
    evaluator's test data, which the RetrievalEvaluator, InputBaselines and the GalleryIndex
    read raw (through the model's or the graph's signatures): it is transformed only when the
    Trainer must name it (no valid split), not written a second time for nobody to read.
    """
    return Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=config.transform.preprocessing_fn_path,
        custom_config={"label_column": config.ingest.label_feature, **config.transform.to_dict()},
        disable_statistics=True,
        splits_config=transform_pb2.SplitsConfig(
            analyze=[TRAIN], transform=[TRAIN, *_trainer_eval_splits(config)]
        ),
    )


def _trainer(config: PipelineConfig, training, pair_gen, transform, inputs: dict) -> object:
    """The Trainer of ``training`` (settings, or a runtime parameter holding them as JSON).

    ``inputs``: its optional channels (``base_model``, ``hyperparameters``).
    """
    return Trainer(
        run_fn=RUN_FN,
        examples=pair_gen.outputs[pair_gen_spec.EXAMPLES_KEY],
        schema=pair_gen.outputs[pair_gen_spec.SCHEMA_KEY],
        transform_graph=transform.outputs["transform_graph"],
        # run_fn takes its length from the training settings (epochs, train_steps)
        train_args=trainer_pb2.TrainArgs(num_steps=max(config.training.train_steps, 1)),
        # run_fn selects its epoch on the valid split (trainer_module/selection.py); without
        # one it reads no eval data at all (the eval split is the evaluator's)
        eval_args=trainer_pb2.EvalArgs(splits=_trainer_eval_splits(config), num_steps=1),
        custom_config=training,
        **inputs,
    )


def _bless_and_push(
    config: PipelineConfig,
    head: ValidatedExamples,
    model,
    production,
    runtime: Runtime,
    baselines=None,
) -> list:
    """RetrievalEvaluator of ``model`` against production, GalleryIndex, then Pusher.

    Production is the ``ProductionModel``'s output; Pusher pushes ``model`` only when
    blessed, all-or-nothing, with the GalleryIndex's index (unless ``gallery_index`` is
    off), and then records it as production (components/pusher). ``baselines``: the
    ``InputBaselines`` of the same examples, which the evaluator reads instead of scoring.
    """
    evaluator = RetrievalEvaluator(
        examples=head.examples,
        model=model,
        baseline_model=production.outputs[production_spec.MODEL_KEY],
        label_column=config.ingest.label_feature,
        settings=runtime.settings("evaluation"),
        baselines=baselines,
    )
    nodes = [evaluator]
    index = {}
    if config.gallery.gallery_index:
        gallery = GalleryIndex(
            examples=head.examples,
            model=model,
            model_blessing=evaluator.outputs[evaluator_spec.BLESSING_KEY],
            evaluation=evaluator.outputs[evaluator_spec.EVALUATION_KEY],
            label_column=config.ingest.label_feature,
            settings=config.gallery,
        )
        nodes.append(gallery)
        index = {"gallery_index": gallery.outputs[gallery_spec.GALLERY_INDEX_KEY]}
    pusher = Pusher(
        model=model,
        model_blessing=evaluator.outputs[evaluator_spec.BLESSING_KEY],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=config.serving_dir)
        ),
        # all-or-nothing pushes, the production record; leftovers of killed ones removed
        **index,
    )
    return [*nodes, pusher]


def _training_and_push(
    config: PipelineConfig, head: ValidatedExamples, production, runtime: Runtime
) -> list:
    """Transform -> PairGen -> Trainer -> RetrievalEvaluator -> GalleryIndex -> Pusher."""
    transform = _transform(config, head.example_gen, head.schema_gen)
    pair_gen = PairGen(
        transformed_examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        settings=config.pair_settings,
        training=runtime.override("training"),
    )
    # warm start: the Trainer gets the production model (wired only then: the production
    # model is read anew on every run, and a cold start's Trainer stays cacheable)
    base_model = (
        {"base_model": production.outputs[production_spec.MODEL_KEY]}
        if config.training.warm_start
        else {}
    )
    trainer = _trainer(config, runtime.training(), pair_gen, transform, base_model)
    model = trainer.outputs[standard_component_specs.MODEL_KEY]
    baselines = _input_baselines(config, head, transform, runtime)
    pushed = _bless_and_push(
        config, head, model, production, runtime, baselines=_baselines_of(baselines)
    )
    return [transform, pair_gen, trainer, baselines, *pushed]


def _input_baselines(config: PipelineConfig, head: ValidatedExamples, transform, runtime):
    """InputBaselines: the evaluation's raw and classic baselines, once per data.

    Every evaluator of the run reads them, and a later run on the same examples, Transform
    graph and evaluation settings replays them from the cache.
    """
    return InputBaselines(
        examples=head.examples,
        transform_graph=transform.outputs["transform_graph"],
        label_column=config.ingest.label_feature,
        settings=runtime.settings("evaluation"),
    )


def _baselines_of(input_baselines) -> object:
    """The channel an evaluator's ``baselines`` input reads."""
    return input_baselines.outputs[input_baselines_spec.BASELINES_KEY]
