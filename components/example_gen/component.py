"""The ExampleGen of the pipeline: TFX's FileBasedExampleGen with the validating executor."""

from __future__ import annotations

from typing import Any

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2, range_config_pb2

from tfx_metric_learning.components.example_gen import executor, inputs
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.example_gen.split_plan import EVAL, NEW_SPAN, TRAIN, VALID


def labelled_example_gen(
    input_base: str,
    pattern: str,
    settings: IngestSettings,
    runtime_settings: data_types.RuntimeParameter | None = None,
) -> Any:
    """``FileBasedExampleGen`` reading ``input_base/pattern`` (CSV or TFRecord) into splits.

    With a span pattern (``settings.data_pattern``, which then replaces ``pattern``), TFX's
    driver resolves the newest span (``RangeConfig`` rolling range of one span, the only range
    ExampleGen takes) and the executor reads the window up to it (``spans``); a third split,
    ``new_span``, holds the newest span's rows again, for its statistics and validation. The
    ``valid`` split (``split_plan``) is there when ``settings.validation_fraction`` > 0.

    ``settings`` (validated here) travel packed in the component's ``custom_config``, or, on
    orchestrators with runtime parameters, as ``runtime_settings`` holding them as JSON.
    """
    settings.validate()
    # the output config only names the splits (TFX derives the artifact's split names from
    # it): the executor places rows by the protocol's split plan, never by hash buckets, so
    # every split gets one bucket, the least TFX accepts
    splits = [
        example_gen_pb2.SplitConfig.Split(name=TRAIN, hash_buckets=1),
        example_gen_pb2.SplitConfig.Split(name=EVAL, hash_buckets=1),
    ]
    if settings.validation_fraction > 0:
        splits.append(example_gen_pb2.SplitConfig.Split(name=VALID, hash_buckets=1))
    range_config = None
    if settings.uses_spans:
        pattern = settings.data_pattern
        splits.append(example_gen_pb2.SplitConfig.Split(name=NEW_SPAN, hash_buckets=1))
        range_config = range_config_pb2.RangeConfig(
            rolling_range=range_config_pb2.RollingRange(num_spans=1)
        )
    elif settings.data_pattern:
        pattern = settings.data_pattern
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="data", pattern=pattern)]
    )
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(splits=splits)
        ),
        range_config=range_config,
        custom_config=runtime_settings or inputs.pack_settings(settings),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
