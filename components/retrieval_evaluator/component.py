"""RetrievalEvaluator: a custom TFX component that scores retrieval and blesses models."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.retrieval_evaluator import executor, spec
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings


class RetrievalEvaluatorSpec(ComponentSpec):
    """Raw examples, the candidate model, an optional baseline -> evaluation and blessing."""

    PARAMETERS = {
        spec.LABEL_COLUMN_KEY: ExecutionParameter(type=str),
        # EvaluationSettings as JSON (every setting)
        spec.SETTINGS_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        spec.BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        spec.BASELINES_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
    }
    OUTPUTS = {
        spec.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        spec.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class RetrievalEvaluator(base_beam_component.BaseBeamComponent):
    """Embeds the eval split, computes retrieval metrics, and writes a ``ModelBlessing``."""

    SPEC_CLASS = RetrievalEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        label_column: str,
        settings: EvaluationSettings | data_types.RuntimeParameter,
        baseline_model: types.BaseChannel | None = None,
        baselines: types.BaseChannel | None = None,
    ):
        """Evaluates ``model`` (against ``baseline_model`` when it holds a model).

        ``baseline_model``: the ``ProductionModel`` component's output (components/production),
        which holds no model when nothing is in production.

        ``settings``: what to measure and the blessing rule (or a runtime parameter holding
        them as JSON, checked by the executor). ``label_column``: the raw label feature.

        ``baselines``: another RetrievalEvaluator's evaluation on the same examples (a
        comparison's first branch): its raw and classic baselines are reused, not recomputed.
        """
        if isinstance(settings, EvaluationSettings):
            settings.validate()
            settings = settings.to_json()
        component_spec = RetrievalEvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            baselines=baselines,
            label_column=label_column,
            settings=settings,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        super().__init__(spec=component_spec)
