"""What a run did, read back from ML Metadata: component states, metrics, blessing, push."""

from __future__ import annotations

import json
import os
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs

from tfx_metric_learning.components.data_validator.spec import (
    ANOMALIES_KEY,
    BASELINE_PROPERTY,
    BLESSED_PROPERTY,
    FOUND_PROPERTY,
    SPAN_PROPERTY,
)
from tfx_metric_learning.components.example_gen import spans
from tfx_metric_learning.components.example_gen import spec as example_gen_spec
from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.pipeline import PRODUCTION_MODEL
from tfx_metric_learning.trainer_module import spec as trainer_spec

_STATES = metadata_store_pb2.Execution.State


def _store(config: PipelineConfig) -> metadata_store.MetadataStore:
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = 3  # READWRITE_OPENCREATE
    return metadata_store.MetadataStore(connection)


def _outputs(store, execution_id: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    by_id = {a.id: a for a in store.get_artifacts_by_id(ids)}
    for e in events:
        if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps:
            out.setdefault(e.path.steps[0].key, []).append(by_id[e.artifact_id])
    return out


def read_json(uri: str, name: str) -> dict[str, Any] | None:
    """The JSON file ``name`` in the artifact folder ``uri`` (any filesystem); None if absent."""
    path = os.path.join(uri, name)  # artifact URIs may be remote: fileio, not open
    if not fileio.exists(path):
        return None
    with fileio.open(path, "rb") as f:
        return json.loads(f.read())


def _output_json(store, execution, key: str, name: str) -> tuple[Any, dict[str, Any] | None]:
    """``(artifact, parsed file)`` of an execution's first output ``key`` holding ``name``."""
    if execution is None:
        return None, None
    for artifact in _outputs(store, execution.id).get(key, []):
        data = read_json(artifact.uri, name)
        if data is not None:
            return artifact, data
    return None, None


def run_executions(config: PipelineConfig, run_context_name: str | None = None) -> dict[str, Any]:
    """The executions of one pipeline run (the newest when no name is given), by node.

    Returns ``{"run": run context name, "executions": {node_id: execution}, "store": the open
    MetadataStore}``, or ``{}`` when the store holds no such run.
    """
    store = _store(config)
    runs = list(store.get_contexts_by_type("pipeline_run"))
    if run_context_name:
        runs = [c for c in runs if c.name == run_context_name]
    if not runs:
        return {}
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    in_run = {e.id: e for e in store.get_executions_by_context(run.id)}
    nodes = {}
    prefix = f"{config.pipeline_name}."
    for node in store.get_contexts_by_type("node"):
        if not node.name.startswith(prefix):
            continue
        for e in store.get_executions_by_context(node.id):
            if e.id in in_run:
                nodes[node.name[len(prefix) :]] = e
    return {"run": run.name, "executions": nodes, "store": store}


def run_outputs(config: PipelineConfig, run_name: str) -> dict[str, dict[str, list[Any]]]:
    """``{node_id: {output key: [artifact]}}`` of the run ``run_name``."""
    found = run_executions(config, run_name)
    if not found:
        return {}
    return {node: _outputs(found["store"], e.id) for node, e in found["executions"].items()}


ABANDONED_PROPERTY = "abandoned"
_UNFINISHED = (_STATES.NEW, _STATES.RUNNING)


def mark_abandoned(config: PipelineConfig, reason: str) -> list[int]:
    """Marks executions left NEW or RUNNING by killed runs as FAILED; returns their ids.

    Call only while holding the pipeline's run lock (``run_state.RunLock``): then no live run
    owns them. Each gets the custom property ``abandoned`` = ``reason``, so monitoring that
    reads ML Metadata sees a failure, not a run that never ends.
    """
    if not os.path.exists(config.metadata_path):
        return []
    store = _store(config)
    stale = [e for e in store.get_executions() if e.last_known_state in _UNFINISHED]
    for execution in stale:
        execution.last_known_state = _STATES.FAILED
        execution.custom_properties[ABANDONED_PROPERTY].string_value = reason
    if stale:
        store.put_executions(stale)
    return [e.id for e in stale]


def latest_run(config: PipelineConfig, run_name: str | None = None) -> dict[str, Any]:
    """Summary of the run ``run_name`` (default: the newest): states, metrics, blessing, push."""
    found = run_executions(config, run_name)
    if not found:
        return {"components": {}}
    store = found["store"]
    executions = found["executions"]
    summary: dict[str, Any] = {
        "run": found["run"],
        "components": {
            node: _STATES.Name(e.last_known_state) for node, e in sorted(executions.items())
        },
        "metrics": None,
        "blessed": None,
        "pushed_model": None,
    }
    _, production = _output_json(
        store,
        executions.get(PRODUCTION_MODEL),
        production_spec.MODEL_KEY,
        production_spec.FOUND_FILE,
    )
    if production is not None:
        summary["production"] = {
            "status": production["status"],
            "reason": production["reason"],
            "version": (production.get("record") or {}).get("version"),
        }
    evaluator = executions.get("RetrievalEvaluator")
    evaluation, record = _output_json(
        store, evaluator, evaluator_spec.EVALUATION_KEY, evaluator_spec.EVALUATION_FILE
    )
    if record is not None:
        summary["metrics"] = record["candidate_model"]["metrics"]
        summary["baseline_metrics"] = (record.get("baseline_model") or {}).get("metrics")
        summary["raw_baselines"] = record.get("raw_baselines") or {}
        summary["lift_over_raw"] = record.get("lift_over_raw")
        summary["classic_baselines"] = {
            name: entry["metrics"]
            for name, entry in (record.get("classic_baselines") or {}).items()
        }
        summary["lift_over_classic"] = record.get("lift_over_classic")
        summary["reasons"] = record["reasons"]
        summary["evaluation_uri"] = evaluation.uri
        summary["report"] = record.get("report")
        summary["report_errors"] = record.get("report_errors") or []
    if evaluator is not None:
        for blessing in _outputs(store, evaluator.id).get(evaluator_spec.BLESSING_KEY, []):
            summary["blessed"] = bool(blessing.custom_properties["blessed"].int_value)
    pusher = executions.get("Pusher")
    if pusher is not None and pusher.last_known_state in (_STATES.COMPLETE, _STATES.CACHED):
        for pushed in _outputs(store, pusher.id).get(standard_component_specs.PUSHED_MODEL_KEY, []):
            props = pushed.custom_properties
            if props.get("pushed") and props["pushed"].int_value == 1:
                summary["pushed_model"] = props["pushed_destination"].string_value
    gallery, info = _output_json(
        store,
        executions.get("GalleryIndex"),
        gallery_spec.GALLERY_INDEX_KEY,
        gallery_spec.INFO_FILE,
    )
    if info is not None and info.get("built"):
        match = {k: v for k, v in info["match"].items() if k != "curve"}
        summary["gallery"] = {
            "uri": gallery.uri,
            "index": info["index"],
            "match": match,
            "source": info.get("gallery", "data"),
            "signature": bool(info.get(gallery_spec.LOOKUP_SIGNATURE)),
            "report": os.path.join(
                gallery.uri, gallery_spec.REPORT_DIR, evaluator_spec.REPORT_FILE
            ),
        }
    _, report = _output_json(
        store,
        executions.get("FileBasedExampleGen"),
        standard_component_specs.EXAMPLES_KEY,
        example_gen_spec.REPORT_FILE,
    )
    if report is not None:
        summary["ingest"] = ingest_summary(report, config.ingest.data_pattern)
    validator = executions.get("DataValidator")
    if validator is not None:
        for anomalies in _outputs(store, validator.id).get(ANOMALIES_KEY, []):
            props = anomalies.custom_properties
            summary["validation"] = {
                "accepted": bool(props[BLESSED_PROPERTY].int_value),
                "anomalies": json.loads(props[FOUND_PROPERTY].string_value),
                "anomalies_uri": anomalies.uri,
                "span": props[SPAN_PROPERTY].int_value if SPAN_PROPERTY in props else None,
                "baseline_span": (
                    props[BASELINE_PROPERTY].int_value if BASELINE_PROPERTY in props else None
                ),
            }
    _, training = _output_json(
        store, executions.get("Trainer"), trainer_spec.MODEL_RUN_KEY, trainer_spec.SUMMARY_FILE
    )
    if training is not None:
        summary["training"] = training
        trainer = executions["Trainer"]
        summary["model_uri"] = _outputs(store, trainer.id)[standard_component_specs.MODEL_KEY][
            0
        ].uri
    return summary


def ingest_summary(report: dict, pattern: str) -> dict:
    """The run summary's ``ingest``, from ExampleGen's ingest report.

    ``pattern``: the data pattern, which names the spans (dates for date specs).
    """
    ingest = {
        "rows_read": report["rows_read"],
        "rows_kept": report["rows_written"],
        "rows_dropped": report["bad_rows"],
        "missing_values_imputed": sum(report["missing_values"].values()),
        "split_rows": {k: v["rows"] for k, v in report["splits"].items()},
    }
    if report.get("spans"):
        # the span ExampleGen resolved (the newest of the spans it read)
        ingest["span"] = report["spans"][-1]["span"]
        ingest["spans_read"] = [s["span"] for s in report["spans"]]
        ingest["spans_left_out"] = [s["span"] for s in report["spans_left_out"]]
        ingest["spans_without_files"] = report.get("spans_without_files", [])
        ingest["span_names"] = {
            key: [spans.span_name(n, pattern) for n in ingest[key]]
            for key in ("spans_read", "spans_left_out", "spans_without_files")
        } | {"span": spans.span_name(ingest["span"], pattern)}
    return ingest
