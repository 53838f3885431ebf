"""DataValidator executor: the new data against the curated schema and the last accepted span.

For each split it checks (the ``new_span`` split alone when the data comes as spans: older
spans of the window were checked when they were new), TFDV's ``validate_statistics`` runs
with the schema and, for spans, the statistics of the newest span the ledger holds as
accepted before this one (``previous_statistics``: the schema's drift comparators measure
against it). The anomalies are written as TFX's ExampleValidator writes them
(``Split-<name>/SchemaDiff.pb``), the artifact gets ``blessed`` = 1 (no anomalies, or
anomalies allowed by ``allow_anomalies``) or 0, and the span's verdict goes into the ledger.

Missing values: TFDV counts a NaN (how ExampleGen writes a missing value) as a present value,
so after TFDV's check ``missing_value_anomalies`` compares each feature's fraction of rows
without a usable value against the feature's ``max_missing_fraction`` tag (what the curated
schema sets per feature, see ``schema_curation``; a feature without the tag is left to TFDV)
and adds an anomaly of TFDV's type ``FEATURE_TYPE_LOW_FRACTION_PRESENT`` to the same
anomalies proto when it is above.

The execution itself succeeds either way, so that the anomalies stay in a published artifact;
the pipeline runs Transform and everything after it only under ``blessed == 1``.

Written rather than configured because TFX 1.16's ExampleValidator passes TFDV no previous
statistics (drift comparators never fire) and never stops a run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_gen.utils import SPAN_PROPERTY_NAME as SPAN
from tfx.components.example_gen.utils import VERSION_PROPERTY_NAME as VERSION
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils, writer_utils

from tfx_metric_learning.components.data_validator import ledger, spec
from tfx_metric_learning.components.data_validator.schema_curation import (
    MISSING_TAG,
    max_missing_fraction,
    present_fraction,
)
from tfx_metric_learning.components.data_validator.settings import ValidationSettings
from tfx_metric_learning.components.example_gen.split_plan import NEW_SPAN

# TFDV's drift and skew reasons: the only ones a drift measurement explains
_DRIFT_REASONS = frozenset(
    {
        anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH,
    }
)
_LOW_PRESENCE = anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT


def missing_value_anomalies(stats, schema, anomalies) -> list[str]:
    """Adds to ``anomalies`` each feature missing in more rows than its tag allows.

    For every feature of ``schema`` with a ``max_missing_fraction=F`` tag, the fraction of
    ``stats``' rows without a usable value (``1 - schema_curation.present_fraction``: absent
    and NaN count as missing) is compared with F; above it, an anomaly of TFDV's type
    ``FEATURE_TYPE_LOW_FRACTION_PRESENT`` (short description "Column dropped" when no row has
    a value, as TFDV's, "Missing values" otherwise) naming both fractions. A feature TFDV
    already reported for that reason is left alone. Returns the features added.
    """
    added = []
    for feature in schema.feature:
        allowed = max_missing_fraction(feature)
        if allowed is None:
            continue
        reported = anomalies.anomaly_info.get(feature.name)
        if reported is not None and any(r.type == _LOW_PRESENCE for r in reported.reason):
            continue
        missing = 1.0 - present_fraction(stats, feature.name)
        if missing <= allowed:
            continue
        short = "Column dropped" if missing == 1.0 else "Missing values"
        text = (
            f"{missing:.1%} of the rows have no value (empty, NaN or absent); the schema "
            f"allows at most {allowed:.1%} ({MISSING_TAG}{allowed:g})"
        )
        info = anomalies.anomaly_info[feature.name]
        if info.reason:
            info.short_description = "Multiple errors"
            info.description += f" {text}."
        else:
            info.short_description, info.description = short, text
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.path.step[:] = [feature.name]
        info.reason.add(type=_LOW_PRESENCE, short_description=short, description=text)
        added.append(feature.name)
    return added


def describe(anomalies, split: str) -> list[dict[str, Any]]:
    """One entry per anomalous feature: split, feature, anomaly, description (and drift).

    ``measured``/``threshold`` are added only to a feature TFDV reports for drift or skew, from
    the measurement above its threshold (TFDV lists the measurements of every compared
    feature, anomalous or not).
    """
    measured = {}
    for info in anomalies.drift_skew_info:
        for m in info.drift_measurements:
            if m.value > m.threshold:
                measured[".".join(info.path.step)] = (m.value, m.threshold)
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        entry = {
            "split": split,
            "feature": feature,
            "anomaly": info.short_description,
            "description": info.description,
        }
        drift = any(r.type in _DRIFT_REASONS for r in info.reason)
        if drift and feature in measured:
            entry["measured"], entry["threshold"] = measured[feature]
        found.append(entry)
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        found.append(
            {
                "split": split,
                "feature": "(dataset)",
                "anomaly": info.short_description,
                "description": info.description,
            }
        )
    return found


def message(found: list[dict[str, Any]]) -> str:
    """The anomalies, one clause per feature: TFDV's description, with a drift's measure."""
    lines = []
    for f in found:
        detail = f["description"]
        if "measured" in f:
            detail = f"measured {f['measured']:.3g} > threshold {f['threshold']:.3g}"
            if f["anomaly"] == "Multiple errors":
                detail = f"{f['description']} {detail}"
        elif detail.startswith(f["anomaly"]):  # TFDV's "New column (column in data ...)"
            lines.append(f"{f['feature']}: {detail}")
            continue
        lines.append(f"{f['feature']}: {f['anomaly']} ({detail})")
    return "; ".join(lines)


def span_and_version(examples) -> tuple[int, int | None]:
    """The span and version ExampleGen recorded on ``examples``.

    ExampleGen sets the Examples type's ``span``/``version`` properties; TFX's local driver
    also records them as custom properties (read first). Numbers are read whatever their
    type: on Kubeflow, artifact metadata holds doubles.
    """

    def value(key: str):
        if examples.has_custom_property(key):
            return examples.get_custom_property(key)
        found = getattr(examples, key) if examples.has_property(key) else None
        return found if found else None

    span, version = value(SPAN), value(VERSION)
    return int(span or 0), None if version is None else int(version)


def load_schema(schema_artifact) -> Any:
    """The schema file of a Schema artifact (``schema.pbtxt``)."""
    return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))


def _baseline_statistics(verdict: dict[str, Any] | None):
    if verdict is None:
        return None
    stats = standard_artifacts.ExampleStatistics()
    stats.uri = verdict["statistics"]
    stats.split_names = artifact_utils.encode_split_names([NEW_SPAN])
    try:
        return stats_artifact_utils.load_statistics(stats, NEW_SPAN).proto()
    except Exception as e:  # noqa: BLE001 - any filesystem's error: no baseline, said so
        logging.warning(
            "statistics of span %s (%s) cannot be read (%s): no drift check for this span",
            verdict["span"],
            verdict["statistics"],
            e,
        )
        return None


class Executor(base_executor.BaseExecutor):
    """Validates statistics against the schema and the previous accepted span; records it."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        settings = ValidationSettings.from_json(
            exec_properties[spec.SETTINGS_KEY], complete=True, source="DataValidator's settings"
        )
        stats_artifact = artifact_utils.get_single_instance(input_dict[spec.STATISTICS_KEY])
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        schema = load_schema(artifact_utils.get_single_instance(input_dict[spec.SCHEMA_KEY]))
        out = artifact_utils.get_single_instance(output_dict[spec.ANOMALIES_KEY])

        split_names = artifact_utils.decode_split_names(stats_artifact.split_names)
        uses_spans = NEW_SPAN in split_names
        checked = [NEW_SPAN] if uses_spans else split_names
        span, version = span_and_version(examples)
        baseline = (
            ledger.latest_accepted_before(settings.verdicts_dir, span) if uses_spans else None
        )
        previous = _baseline_statistics(baseline)
        out.split_names = artifact_utils.encode_split_names(checked)
        out.span = span

        found: list[dict[str, Any]] = []
        for split in checked:
            stats = stats_artifact_utils.load_statistics(stats_artifact, split).proto()
            anomalies = tfdv.validate_statistics(stats, schema, previous_statistics=previous)
            missing_value_anomalies(stats, schema, anomalies)
            path = os.path.join(artifact_utils.get_split_uri([out], split), spec.ANOMALIES_FILE)
            writer_utils.write_anomalies(path, anomalies)
            found.extend(describe(anomalies, split))

        accepted = not found or settings.allow_anomalies
        out.set_int_custom_property(spec.BLESSED_PROPERTY, int(accepted))
        out.set_string_custom_property(spec.FOUND_PROPERTY, json.dumps(found, sort_keys=True))
        if uses_spans:
            out.set_int_custom_property(spec.SPAN_PROPERTY, span)
        if previous is not None:
            out.set_int_custom_property(spec.BASELINE_PROPERTY, int(baseline["span"]))
        where = f"span {span}" if uses_spans else f"splits {', '.join(checked)}"
        against = (
            f" and span {baseline['span']}'s statistics"
            if previous is not None
            else " (no earlier accepted span: no drift check)"
            if uses_spans
            else ""
        )
        if not found:
            logging.info("%s: no anomalies against the schema%s", where, against)
        elif accepted:
            logging.warning("%s: anomalies allowed (--allow-anomalies): %s", where, message(found))
        else:
            logging.error(
                "%s: anomalies, the run stops before Transform: %s", where, message(found)
            )
        if uses_spans:
            ledger.record(
                settings.verdicts_dir,
                {
                    "span": span,
                    "version": version,
                    "accepted": accepted,
                    "allowed": bool(found) and accepted,
                    "anomalies": found,
                    "statistics": stats_artifact.uri,
                    "anomalies_uri": out.uri,
                    "baseline_span": baseline["span"] if previous is not None else None,
                },
            )
