"""What an ExampleGen execution reads: its settings, files, spans and their fingerprint.

- ``settings_from`` / ``pack_settings``: the ingest settings in ExampleGen's ``custom_config``
  (packed as a Struct in TFX's ``CustomConfig``, or a runtime parameter's JSON object);
- ``files_to_read``: without spans the files of the one pattern; with spans the window of
  spans up to the newest (``newest_span``: resolved here, whether or not a driver ran; the
  open-source Kubeflow backend runs none), leaving out spans validation rejected;
- ``fingerprint`` / ``input_digest``: TFX's fingerprint of the files read and its sha256, the
  Kubeflow cache key the run's plan computes (``kubeflow/run_plan.py``) without reading a row.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils as tfx_example_gen_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.example_gen import spans
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.example_gen.split_plan import NEW_SPAN, VALID


def settings_from(exec_properties: dict[str, Any]) -> IngestSettings:
    """The ingest settings in ExampleGen's ``custom_config``; all of them.

    Either packed (as a Struct) in the ``CustomConfig`` proto, or, from a runtime parameter,
    the settings' own JSON object.
    """
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    source = "ExampleGen's custom_config"
    data: dict[str, Any] = {}
    if raw:
        parsed = json.loads(raw)
        if not (set(parsed) <= {"custom_config", "customConfig"}):
            return IngestSettings.from_dict(parsed, complete=True, source=source)
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(raw, config)
        struct = struct_pb2.Struct()
        if config.custom_config.Unpack(struct):
            data = json_format.MessageToDict(struct)
    return IngestSettings.from_dict(data, complete=True, source=source)


def pack_settings(settings: IngestSettings) -> example_gen_pb2.CustomConfig:
    """Packs ingest settings into the ``CustomConfig`` proto ``FileBasedExampleGen`` takes."""
    struct = struct_pb2.Struct()
    struct.update(settings.to_dict())
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def files_to_read(exec_properties: dict[str, Any], settings: IngestSettings) -> dict[str, Any]:
    """The files this execution reads, and the spans they belong to.

    Without spans: the one pattern of the input config. With spans: the window of spans up
    to the one the driver resolved (``exec_properties['span']``), leaving out those the span
    ledger holds as rejected at their current version.
    """
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    if len(input_config.splits) != 1:
        raise DataError("expected one input split; the protocol makes train/eval/valid")
    base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    resolved = input_config.splits[0].pattern
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
    )
    compiled = [s.name for s in output_config.split_config.splits]
    if (VALID in compiled) != (settings.validation_fraction > 0):
        raise DataError(
            f"validation_fraction {settings.validation_fraction} "
            f"{'asks for' if settings.validation_fraction > 0 else 'leaves out'} the "
            f"validation split, which the pipeline was compiled "
            f"{'without' if VALID not in compiled else 'with'}: a validation split changes "
            f"the pipeline's splits; compile it again"
        )
    compiled_spans = NEW_SPAN in compiled
    if compiled_spans != settings.uses_spans:
        raise DataError(
            f"the data pattern {settings.data_pattern!r} "
            f"{'has no' if compiled_spans else 'has a'} span spec, unlike the one the pipeline "
            f"was compiled with ({resolved!r}): a span pattern changes the pipeline; compile it "
            f"again"
        )
    out: dict[str, Any] = {
        "spans": [],
        "left_out": [],
        "without_files": [],
        "new_span_paths": None,
    }
    if not settings.uses_spans:
        pattern = os.path.join(base, resolved)
        paths = sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p))
        if not paths:
            raise DataError(f"no input files match {pattern}")
        return {**out, "paths": paths, "fingerprint": fingerprint(base, [resolved])}
    found = spans.find_spans(base, settings.data_pattern)
    if not found:
        raise DataError(f"no span of {settings.data_pattern!r} under {base}")
    newest = newest_span(exec_properties, settings, resolved, found)
    chosen, left_out = spans.window(
        found, newest, settings.window, ledger.rejected(settings.verdicts_dir)
    )
    paths, described = [], []
    for span in chosen:
        span_files = spans.span_paths(base, span)
        if not span_files:
            raise DataError(f"span {span.number} ({os.path.join(base, span.pattern)}) has no files")
        paths.extend(span_files)
        described.append({"span": span.number, "version": span.version, "files": span_files})
    out["new_span_paths"] = described[-1]["files"]
    out["left_out"] = [{"span": s.number, "version": s.version} for s in left_out]
    out["without_files"] = spans.empty_newer_spans(base, settings.data_pattern, newest)
    if out["without_files"]:
        logging.warning(
            "span(s) %s have no files yet: the newest readable span is %d",
            out["without_files"],
            newest,
        )
    out["fingerprint"] = fingerprint(base, [s.pattern for s in chosen])
    return {**out, "spans": described, "paths": paths}


def newest_span(
    exec_properties: dict[str, Any],
    settings: IngestSettings,
    pattern: str,
    found: dict[int, spans.Span],
) -> int:
    """The span this execution validates: the newest under the data folder, resolved here.

    ExampleGen does not rely on a driver: on the open-source Kubeflow backend none runs, and
    ``pattern`` (the input config's) is the data pattern itself. Where TFX's driver did run
    (locally; Vertex's pre-cache check) it resolved ``pattern`` to one span's files and set
    the ``span`` property; that span must then be the one found here, so a data pattern
    changed since compiling is named, not read silently.
    """
    newest = max(found)
    if pattern == settings.data_pattern:
        return newest
    driver_span = exec_properties.get(tfx_example_gen_utils.SPAN_PROPERTY_NAME)
    span = int(driver_span) if driver_span is not None else newest
    if span not in found or found[span].pattern != pattern:
        raise DataError(
            f"ExampleGen's input pattern {pattern!r} is neither the data pattern "
            f"{settings.data_pattern!r} nor span {span} of it: the data pattern changed since "
            f"the pipeline was compiled; compile it again"
        )
    return span


def input_digest(exec_properties: dict[str, Any]) -> str:
    """sha256 of the fingerprint of the files an execution with ``exec_properties`` reads.

    The same resolution as the execution's own (``files_to_read``: the newest span, the
    window, the spans validation rejected), without reading a row.
    """
    settings = settings_from(exec_properties)
    return fingerprint_digest(files_to_read(exec_properties, settings)["fingerprint"])


def fingerprint_digest(fingerprint_text: str) -> str:
    """sha256 hex of a ``fingerprint``."""
    return hashlib.sha256(fingerprint_text.encode("utf-8")).hexdigest()


def fingerprint(base: str, patterns: list[str]) -> str:
    """The fingerprint of the files read: TFX's own (file count, bytes, mtimes) per pattern."""
    return "\n".join(
        io_utils.generate_fingerprint(pattern, os.path.join(base, pattern)) for pattern in patterns
    )
