"""Parsing and validating raw rows: pure Python, shared by the executor and the CLI's checks.

A row is valid when it has a label and every feature value is a finite number or missing.
Missing values (empty, ``nan``, ``NA``) become NaN, for Transform to impute. Rows that
cannot be used are classified by reason and counted, never silently dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfx_metric_learning.components.example_gen.files import DataError

MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})

# Reasons a row is dropped (keys of the ingest report's "bad_rows").
MISSING_LABEL = "missing_label"
WRONG_FIELD_COUNT = "wrong_field_count"
NON_FINITE = "non_finite_value"
NON_NUMERIC = "non_numeric_value"


def sanitize_name(name: str) -> str:
    """A column name usable as a tf.Example feature and a SavedModel signature input."""
    clean = re.sub(r"[^0-9A-Za-z_]+", "_", name.strip()).strip("_") or "column"
    return f"f_{clean}" if clean[0].isdigit() else clean


def sanitize_header(header: Sequence[str]) -> list[str]:
    """The sanitised column names (``sanitize_name``), one per column, CSV and TFRecord alike.

    Two columns whose names sanitise to the same feature name (``a b`` and ``a_b``, or a
    repeated name) are refused naming both: renaming one silently would make the served
    model's inputs differ from the user's columns.
    """
    out: list[str] = []
    origin: dict[str, str] = {}
    for name in header:
        clean = sanitize_name(name)
        if clean in origin:
            raise DataError(
                f"columns {origin[clean]!r} and {name!r} both become the feature name "
                f"{clean!r} (names keep letters, digits and _); rename one of them"
            )
        origin[clean] = name
        out.append(clean)
    return out


def resolve_label_column(columns: Sequence[str], label_column: str, source: str) -> int:
    """Index of ``label_column`` among the raw or sanitised ``columns``; a clear error if absent."""
    raw = list(columns)
    if label_column in raw:
        return raw.index(label_column)
    clean = sanitize_header(raw)
    if label_column in clean:
        return clean.index(label_column)
    raise DataError(
        f"label column {label_column!r} does not exist in {source}; columns: {', '.join(raw)}"
    )


def parse_value(text: Any) -> tuple[float | None, str | None]:
    """``(value, problem)``: a float (NaN when missing) or a reason the value is unusable."""
    if text is None:
        return math.nan, None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        token = str(text).strip()
        if token.lower() in MISSING_TOKENS:
            return math.nan, None
        try:
            value = float(token)
        except ValueError:
            return None, NON_NUMERIC
    if math.isnan(value):
        return math.nan, None
    if math.isinf(value):
        return None, NON_FINITE
    return value, None


def normalise_label(value: Any) -> str | None:
    """The label as a string (``3.0`` -> ``"3"``), or None when it is missing."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    if text.lower() in MISSING_TOKENS:
        return None
    return text


def to_example(features: dict[str, float], label_name: str, label: str) -> tf.train.Example:
    """A tf.Example with one float per feature (NaN = missing) and the label as bytes."""
    feature = {
        name: tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        for name, value in features.items()
    }
    feature[label_name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def validate_row(
    values: dict[str, Any], feature_names: Sequence[str], label_name: str
) -> tuple[dict[str, float] | None, str | None, dict[str, Any]]:
    """Validates one row given as ``{column: raw value}``.

    Returns ``(features, label, info)``: ``features`` is None when the row is dropped, and
    then ``info["reason"]`` says why (``info["column"]``/``info["value"]`` for bad values);
    otherwise ``info["missing"]`` lists the columns whose value is missing.
    """
    label = normalise_label(values.get(label_name))
    if label is None:
        return None, None, {"reason": MISSING_LABEL}
    features: dict[str, float] = {}
    missing: list[str] = []
    for name in feature_names:
        value, problem = parse_value(values.get(name))
        if problem:
            return None, None, {"reason": problem, "column": name, "value": str(values[name])}
        if math.isnan(value):
            missing.append(name)
        features[name] = value
    return features, label, {"missing": missing}
