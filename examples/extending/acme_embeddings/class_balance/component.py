"""ClassBalance: a custom TFX component reporting rows per class in every split."""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from acme_embeddings.class_balance import executor, spec


class ClassBalanceSpec(ComponentSpec):
    """Examples in, a ClassBalance report out."""

    PARAMETERS = {
        spec.MIN_ROWS_KEY: ExecutionParameter(type=int, optional=True),
        spec.LABEL_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {spec.BALANCE_KEY: ChannelParameter(type=spec.ClassBalance)}


class ClassBalance(base_component.BaseComponent):
    """Counts rows per class and split; lists the classes under ``min_rows_per_class``."""

    SPEC_CLASS = ClassBalanceSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self, examples: Channel, min_rows_per_class: int = 1, label_feature: str = "label"
    ):
        super().__init__(
            spec=ClassBalanceSpec(
                examples=examples,
                min_rows_per_class=min_rows_per_class,
                label_feature=label_feature,
                class_balance=Channel(type=spec.ClassBalance),
            )
        )
