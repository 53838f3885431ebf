"""The ExampleGen of the pipeline: TFX's FileBasedExampleGen with the validating executor."""

from __future__ import annotations

from typing import Any

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen import executor
from components.example_gen.settings import IngestSettings


def labelled_example_gen(input_base: str, pattern: str, settings: IngestSettings) -> Any:
    """``FileBasedExampleGen`` reading ``input_base/pattern`` (CSV or TFRecord) into train/eval.

    ``settings`` (validated here) travel packed in the component's ``custom_config``.
    """
    settings.validate()
    input_config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name="data", pattern=pattern)])
    output_config = tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name=executor.TRAIN, hash_buckets=7),
                tfx.proto.SplitConfig.Split(name=executor.EVAL, hash_buckets=3),
            ]
        )
    )
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config,
        custom_config=executor.pack_settings(settings),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
