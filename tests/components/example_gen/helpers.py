"""Runs the ExampleGen executor on a folder through the testing kit's ``run_executor``."""

from __future__ import annotations

import json
import os

from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from tfx_metric_learning.components.example_gen import component, spec
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.testing import run_executor


def run_example_gen(
    input_base: str,
    pattern: str,
    out_dir: str,
    artifact=None,
    overrides=None,
    beam_args=None,
    **settings,
) -> dict:
    """Runs the executor; returns the ingest report.

    ``overrides``: execution properties set over the component's (e.g. an output format);
    ``beam_args``: the Beam pipeline's arguments (default: Beam's defaults).

    With a span pattern, the span is resolved first by TFX's own driver code (the input
    processor ExampleGen's driver uses), as a pipeline run does.
    """
    gen = component.labelled_example_gen(input_base, pattern, IngestSettings(**settings))
    props = dict(gen.exec_properties)
    for key in (
        standard_component_specs.INPUT_CONFIG_KEY,
        standard_component_specs.OUTPUT_CONFIG_KEY,
        standard_component_specs.CUSTOM_CONFIG_KEY,
        standard_component_specs.RANGE_CONFIG_KEY,
    ):
        if props.get(key) is not None and not isinstance(props[key], str):
            props[key] = proto_utils.proto_to_json(props[key])
    if props.get(standard_component_specs.RANGE_CONFIG_KEY):
        props = _resolve_span(props)
    props.update(overrides or {})
    declared = gen.SPEC_CLASS.PARAMETERS
    examples = artifact or standard_artifacts.Examples()
    examples.uri = out_dir
    run_executor(
        gen,
        exec_properties={k: v for k, v in props.items() if k in declared},
        driver_properties={k: v for k, v in props.items() if k not in declared},
        outputs={standard_component_specs.EXAMPLES_KEY: examples},
        beam_pipeline_args=beam_args,
    )
    with open(os.path.join(out_dir, spec.REPORT_FILE)) as f:
        return json.load(f)


def _resolve_span(props: dict) -> dict:
    """What ExampleGen's driver adds: the newest span and version, the resolved pattern."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(props[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    range_config = range_config_pb2.RangeConfig()
    proto_utils.json_to_proto(props[standard_component_specs.RANGE_CONFIG_KEY], range_config)
    processor = input_processor.FileBasedInputProcessor(
        props[standard_component_specs.INPUT_BASE_KEY], input_config.splits, range_config
    )
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    return props | {
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        "span": span,
        "version": version,
    }
