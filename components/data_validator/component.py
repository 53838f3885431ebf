"""DataValidator: a TFX component between StatisticsGen and Transform (see ``executor``)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.data_validator import executor, spec
from tfx_metric_learning.components.data_validator.settings import ValidationSettings


class DataValidatorSpec(ComponentSpec):
    """Inputs: statistics, the schema, the examples (their span). Output: the anomalies."""

    PARAMETERS = {spec.SETTINGS_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        spec.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        spec.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {spec.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}


class DataValidator(base_component.BaseComponent):
    """Validates the new data; its anomalies artifact's ``blessed`` gates the rest of the run."""

    SPEC_CLASS = DataValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        statistics: types.BaseChannel,
        schema: types.BaseChannel,
        examples: types.BaseChannel,
        settings: ValidationSettings | data_types.RuntimeParameter,
    ):
        """``settings``: validated here, or a runtime parameter holding them as JSON."""
        if isinstance(settings, ValidationSettings):
            settings.validate()
            settings = settings.to_json()
        super().__init__(
            spec=DataValidatorSpec(
                statistics=statistics,
                schema=schema,
                examples=examples,
                settings=settings,
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
