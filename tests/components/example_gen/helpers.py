"""Runs the ExampleGen executor directly on a folder (real Beam, no orchestrator)."""

from __future__ import annotations

import json
import os

from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import component, executor
from components.example_gen.settings import IngestSettings


def run_example_gen(input_base: str, pattern: str, out_dir: str, **settings) -> dict:
    """Runs the executor; returns the ingest report."""
    gen = component.labelled_example_gen(input_base, pattern, IngestSettings(**settings))
    props = dict(gen.exec_properties)
    for key in (
        standard_component_specs.INPUT_CONFIG_KEY,
        standard_component_specs.OUTPUT_CONFIG_KEY,
        standard_component_specs.CUSTOM_CONFIG_KEY,
    ):
        if not isinstance(props[key], str):
            props[key] = proto_utils.proto_to_json(props[key])
    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    executor.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, props)
    with open(os.path.join(out_dir, executor.REPORT_FILE)) as f:
        return json.load(f)
