"""PairGen: a custom TFX component between Transform and Trainer (see ``executor``)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.pair_gen import executor
from tfx_metric_learning.components.pair_gen import spec as pair_gen_spec
from tfx_metric_learning.components.pair_gen.settings import PairSettings
from tfx_metric_learning.trainer_module.settings import TrainingSettings


class PairGenSpec(ComponentSpec):
    """Inputs: Transform's examples and graph. Outputs: examples and their schema."""

    PARAMETERS = {
        # PairSettings as JSON (every setting)
        pair_gen_spec.SETTINGS_KEY: ExecutionParameter(type=str),
        # TrainingSettings as JSON; when given, the mode and shape follow its loss
        pair_gen_spec.TRAINING_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        pair_gen_spec.TRANSFORMED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        pair_gen_spec.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {
        pair_gen_spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        pair_gen_spec.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
    }


class PairGen(base_beam_component.BaseBeamComponent):
    """Builds offline pairs/triplets or P x K batches, or passes labelled rows through."""

    SPEC_CLASS = PairGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        transformed_examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        settings: PairSettings,
        training: TrainingSettings | data_types.RuntimeParameter | str | None = None,
    ):
        """``settings`` say what to build (see ``PairSettings``), validated here.

        ``training``: the training settings (or a runtime parameter holding them as JSON). When
        given, the executor derives the mode, K and P x K from them at run time
        (``PairSettings.following``), so a loss changed by a runtime parameter is fed what it
        consumes. Without it, ``settings`` are used as they are (the local runner passes
        settings already derived from the config, which keeps PairGen cached when only the
        training length or the optimiser change).
        """
        settings.validate()
        if isinstance(training, TrainingSettings):
            training.validate()
            training = training.to_json()
        spec = PairGenSpec(
            transformed_examples=transformed_examples,
            transform_graph=transform_graph,
            settings=settings.to_json(),
            training=training,
            examples=types.Channel(type=standard_artifacts.Examples),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        super().__init__(spec=spec)
