"""RetrievalEvaluator: a custom TFX component that scores retrieval and blesses models."""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.retrieval_evaluator import executor


class RetrievalEvaluatorSpec(ComponentSpec):
    """Raw examples, the candidate model, an optional baseline -> evaluation and blessing."""

    PARAMETERS = {
        "label_column": ExecutionParameter(type=str),
        "split": ExecutionParameter(type=str, optional=True),
        "query_split": ExecutionParameter(type=str, optional=True),
        "gallery_split": ExecutionParameter(type=str, optional=True),
        "seed": ExecutionParameter(type=int, optional=True),
        "recall_at_k": ExecutionParameter(type=str, optional=True),
        "thresholds": ExecutionParameter(type=str, optional=True),
        "comparison_metric": ExecutionParameter(type=str, optional=True),
        "comparison_tolerance": ExecutionParameter(type=float, optional=True),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
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
        baseline_model: types.BaseChannel | None = None,
        split: str = "eval",
        query_split: str = "",
        gallery_split: str = "",
        seed: int = 0,
        recall_at_k: list[int] | None = None,
        thresholds: dict[str, float] | None = None,
        comparison_metric: str = "map_at_r",
        comparison_tolerance: float = 0.0,
    ):
        """Thresholds are lower bounds on metrics; the baseline comparison uses one metric.

        Retrieval is leave-one-out on ``split``, or, with ``query_split`` and
        ``gallery_split``, queries of one split against the gallery of the other.
        """
        if bool(query_split) != bool(gallery_split):
            raise ValueError("set both query_split and gallery_split, or neither")
        spec = RetrievalEvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            label_column=label_column,
            split=split,
            query_split=query_split,
            gallery_split=gallery_split,
            seed=seed,
            recall_at_k=json.dumps(sorted(set(recall_at_k or [1, 5, 10]))),
            thresholds=(
                thresholds
                if isinstance(thresholds, data_types.RuntimeParameter)
                else json.dumps(thresholds or {}, sort_keys=True)
            ),
            comparison_metric=comparison_metric,
            comparison_tolerance=float(comparison_tolerance),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        super().__init__(spec=spec)
