"""InputBaselines: the input baselines of an evaluation, measured once per data.

The raw-feature baselines (the inputs as read, and through Transform's graph) and the
classic linear ones (PCA whitening, regularised LDA) depend on the examples, Transform's
graph and the evaluation settings, never on a model. This component scores them once; every
RetrievalEvaluator of the run (a comparison's branches and the final evaluation) reads them
through its ``baselines`` channel, and TFX's cache (Kubeflow's, locally ML Metadata's) replays
the execution in a later run on the same examples, graph and settings.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.input_baselines import executor, spec
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings


class InputBaselinesSpec(ComponentSpec):
    """Raw examples and Transform's graph -> the evaluation's input baselines."""

    PARAMETERS = {
        spec.LABEL_COLUMN_KEY: ExecutionParameter(type=str),
        spec.SETTINGS_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {spec.BASELINES_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation)}


class InputBaselines(base_beam_component.BaseBeamComponent):
    """Scores the raw and classic baselines of ``examples`` under the evaluation settings."""

    SPEC_CLASS = InputBaselinesSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        label_column: str,
        settings: EvaluationSettings | data_types.RuntimeParameter,
    ):
        """``settings``: the RetrievalEvaluator's (the same object or runtime parameter)."""
        if isinstance(settings, EvaluationSettings):
            settings.validate()
            settings = settings.to_json()
        super().__init__(
            spec=InputBaselinesSpec(
                examples=examples,
                transform_graph=transform_graph,
                label_column=label_column,
                settings=settings,
                baselines=types.Channel(type=standard_artifacts.ModelEvaluation),
            )
        )
