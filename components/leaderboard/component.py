"""Leaderboard: a custom TFX component that gathers every branch of a comparison.

Its inputs are one model, training run and evaluation per (candidate, seed) branch, so their
number is the comparison's: ``Leaderboard`` builds a spec class per instance with channels
``model_<i>``, ``model_run_<i>`` and ``evaluation_<i>`` for branch ``i`` (the branches'
candidate and seed are an execution property, ``spec.BRANCHES_KEY``). Orchestrators only
see channels and properties (the compiled IR and KFP spec name each input), so nothing
depends on the class being importable by name.
"""

from __future__ import annotations

import dataclasses
import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.leaderboard import executor
from tfx_metric_learning.components.leaderboard import spec as leaderboard_spec


@dataclasses.dataclass(frozen=True)
class Branch:
    """One branch of a comparison: a candidate trained with a seed, and its outputs.

    ``model`` and ``model_run``: its Trainer's channels; ``evaluation``: its evaluator's.
    """

    candidate: str
    seed: int
    model: types.BaseChannel
    model_run: types.BaseChannel
    evaluation: types.BaseChannel

    def channels(self) -> dict[str, types.BaseChannel]:
        """The branch's channels by the Leaderboard's input keys."""
        return {
            leaderboard_spec.MODEL_KEY: self.model,
            leaderboard_spec.MODEL_RUN_KEY: self.model_run,
            leaderboard_spec.EVALUATION_KEY: self.evaluation,
        }


class LeaderboardSpec(ComponentSpec):
    """Branches' models, training runs and evaluations -> the leaderboard and the winner."""

    PARAMETERS = {
        leaderboard_spec.BRANCHES_KEY: ExecutionParameter(type=str),
        leaderboard_spec.METRICS_KEY: ExecutionParameter(type=str),
    }
    INPUTS: dict = {}  # per instance, see ``_spec_class``
    OUTPUTS = {
        leaderboard_spec.LEADERBOARD_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        leaderboard_spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
    }


def _spec_class(count: int) -> type[LeaderboardSpec]:
    inputs = {}
    for i in range(count):
        inputs[executor.input_key(leaderboard_spec.MODEL_KEY, i)] = ChannelParameter(
            type=standard_artifacts.Model
        )
        inputs[executor.input_key(leaderboard_spec.MODEL_RUN_KEY, i)] = ChannelParameter(
            type=standard_artifacts.ModelRun
        )
        inputs[executor.input_key(leaderboard_spec.EVALUATION_KEY, i)] = ChannelParameter(
            type=standard_artifacts.ModelEvaluation
        )
    return type("LeaderboardSpec", (LeaderboardSpec,), {"INPUTS": inputs})


class Leaderboard(base_component.BaseComponent):
    """Ranks the candidates by validation MAP@R, reports them on test data, outputs the winner."""

    SPEC_CLASS = LeaderboardSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, branches: list[Branch], metrics: list[str]):
        """Gathers ``branches`` and reports ``metrics`` (test metrics) for each."""
        if not branches:
            raise ValueError("a Leaderboard needs at least one branch")
        channels = {}
        for i, branch in enumerate(branches):
            for key, channel in branch.channels().items():
                channels[executor.input_key(key, i)] = channel
        described = [{"candidate": b.candidate, "seed": int(b.seed)} for b in branches]
        spec = _spec_class(len(branches))(
            branches=json.dumps(described),
            metrics=json.dumps(list(metrics)),
            leaderboard=types.Channel(type=standard_artifacts.ModelEvaluation),
            model=types.Channel(type=standard_artifacts.Model),
            **channels,
        )
        super().__init__(spec=spec)
