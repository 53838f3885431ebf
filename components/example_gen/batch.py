"""Validating and encoding rows a batch at a time, with numpy doing the per-cell work.

``rows.validate_row`` and ``rows.to_example`` for a whole batch.

Validation (``validate_csv``). A batch of CSV lines (already decoded) is split into fields,
by ``str.split`` for a line without a quote character and by ``files.split_fields`` (the
``csv`` module, RFC 4180) for a line with one; a line's fields are never joined with the
next line's. Rows of the wrong width are dropped (``wrong_field_count``), then the feature
cells of the others are converted to float64 by numpy for the whole batch at once
(``parse_columns``). Only a column numpy refuses (a missing token such as ``NA``, a
non-numeric value) is parsed cell by cell, by ``rows.parse_value``. Every row's outcome is
``rows.validate_row``'s: the same reason and, for a bad value, the same first bad column in
feature order and the same raw value (tested on hostile rows). Cost: O(rows x columns)
numpy work plus O(rows) Python for the split and the label.

Encoding (``ExampleEncoder``). tfx-bsl's ``RecordBatchToExamples`` is C++ but orders a
tf.Example's features by a hash seeded per process (measured: the same batch serialises to
different bytes in three processes), and the protocol splits hash the serialized bytes, so
its output would move rows between splits from one run to the next. This encoder writes the
bytes ``to_example(...).SerializeToString(deterministic=True)`` writes (map entries sorted
by key; every entry of a float feature has the same length, so the batch's float entries are
one uint8 matrix filled by numpy); tested byte for byte against protobuf.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfx_metric_learning.components.example_gen import files, rows

# problem codes of parse_columns, in the order rows.parse_value reports them
OK, NON_NUMERIC, NON_FINITE = 0, 1, 2
_REASONS = {NON_NUMERIC: rows.NON_NUMERIC, NON_FINITE: rows.NON_FINITE}


def parse_columns(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, problems)`` of a 2-D array of feature cells (str), as ``rows.parse_value``.

    ``values``: float64, NaN where a value is missing (and where it is unusable);
    ``problems``: int8, ``NON_NUMERIC`` or ``NON_FINITE`` where ``parse_value`` reports one.
    Whole columns are converted by numpy; a column with any cell numpy refuses is parsed
    cell by cell.
    """
    n, width = cells.shape
    values = np.empty((n, width), dtype=np.float64)
    problems = np.zeros((n, width), dtype=np.int8)
    for j in range(width):
        column = cells[:, j]
        try:
            values[:, j] = column.astype(np.float64)
        except ValueError:
            for i, cell in enumerate(column.tolist()):
                value, problem = rows.parse_value(cell)
                if problem:
                    values[i, j] = np.nan
                    problems[i, j] = NON_NUMERIC if problem == rows.NON_NUMERIC else NON_FINITE
                else:
                    values[i, j] = value
    problems[np.isinf(values)] = NON_FINITE
    values[problems != OK] = np.nan
    return values, problems


@dataclasses.dataclass
class Checked:
    """A validated batch: the kept rows and, for every dropped row, why.

    ``values`` (kept rows x features, float32, NaN = missing) are in ``feature_names`` order;
    ``labels`` and ``kept`` (the kept rows' indexes in the batch) are per kept row; ``bad``
    holds ``(row index, info)`` with ``info`` as ``rows.validate_row`` gives it.
    """

    kept: list[int]
    labels: list[str]
    values: np.ndarray
    bad: list[tuple[int, dict[str, Any]]]


def with_features(checked: Checked, names: Sequence[str], wanted: Sequence[str]) -> Checked:
    """``checked`` (values in ``names`` order) with its values in ``wanted`` order.

    A feature of ``wanted`` not in ``names`` (a column the file lacks) is missing (NaN) in
    every row; every name of ``names`` must be in ``wanted``.
    """
    values = np.full((len(checked.kept), len(wanted)), np.nan, dtype=np.float32)
    position = {name: j for j, name in enumerate(wanted)}
    values[:, [position[n] for n in names]] = checked.values
    return dataclasses.replace(checked, values=values)


def validate_csv(
    lines: Sequence[str], delimiter: str, names: Sequence[str], label_index: int
) -> tuple[Checked, list[int]]:
    """Validates decoded CSV lines (line ends stripped); also returns the blank lines' indexes.

    ``names``: the feature name of every column, the label's at ``label_index`` (the
    features are the others, in column order).
    """
    width = len(names)
    feature_names = [n for j, n in enumerate(names) if j != label_index]
    blank: list[int] = []
    good_rows: list[int] = []
    good_fields: list[list[str]] = []
    bad: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(lines):
        fields = files.split_fields(line, delimiter) if '"' in line else line.split(delimiter)
        if not fields or fields == [""]:
            blank.append(i)
        elif len(fields) != width:
            bad.append((i, {"reason": rows.WRONG_FIELD_COUNT}))
        else:
            good_rows.append(i)
            good_fields.append(fields)
    if not good_fields:
        return Checked([], [], np.zeros((0, width - 1), np.float32), bad), blank
    table = np.array(good_fields, dtype=str)
    features = np.delete(table, label_index, axis=1)
    labels = [rows.normalise_label(v) for v in table[:, label_index].tolist()]
    values, problems = parse_columns(features)
    first = np.where(problems.any(axis=1), (problems != OK).argmax(axis=1), -1)
    kept, kept_labels = [], []
    for k, (i, label) in enumerate(zip(good_rows, labels, strict=True)):
        if label is None:
            bad.append((i, {"reason": rows.MISSING_LABEL}))
        elif first[k] >= 0:
            j = int(first[k])
            reason = _REASONS[int(problems[k, j])]
            info = {"reason": reason, "column": feature_names[j], "value": str(features[k, j])}
            bad.append((i, info))
        else:
            kept.append(k)
            kept_labels.append(label)
    bad.sort(key=lambda b: b[0])
    rows_kept = [good_rows[k] for k in kept]
    return Checked(rows_kept, kept_labels, values[kept].astype(np.float32), bad), blank


# an entry's value: Feature{float_list (2): FloatList{value (1, packed): 4 bytes}}, zeroed
_FLOAT_VALUE = b"\x12\x08\x12\x06\x0a\x04" + bytes(4)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(payload)) + payload


class ExampleEncoder:
    """Serialises rows of one float per feature and a bytes label as tf.Examples.

    The bytes are exactly ``rows.to_example(...).SerializeToString(deterministic=True)``'s.

    tf.Example wire format: ``Example.features`` (field 1) holds ``Features.feature`` map
    entries (field 1), each ``key`` (1) then ``value`` (2, a ``Feature``); a float feature is
    ``float_list`` (2) with its values packed (field 1), a bytes feature ``bytes_list`` (1)
    with one ``value`` (1). Deterministic serialisation writes the entries sorted by key.
    """

    def __init__(self, feature_names: Sequence[str], label_name: str):
        self._order = sorted(range(len(feature_names)), key=lambda j: feature_names[j])
        keys = [feature_names[j] for j in self._order]
        self._split = sum(1 for k in keys if k < label_name)  # float entries before the label
        self._label_key = _length_delimited(1, label_name.encode())
        entries = [
            _length_delimited(1, _length_delimited(1, k.encode()) + _FLOAT_VALUE) for k in keys
        ]
        # entry = 0a <len> (key) 12 08 12 06 0a 04 <4 float bytes>: the float is the last 4
        self._template = np.frombuffer(b"".join(entries), dtype=np.uint8)
        ends = np.cumsum([len(e) for e in entries])
        self._float_at = (ends - 4)[:, None] + np.arange(4)[None, :]
        self._cut = int(ends[self._split - 1]) if self._split else 0
        self._labels: dict[str, bytes] = {}

    def _label_entry(self, label: str) -> bytes:
        entry = self._labels.get(label)
        if entry is None:
            feature = _length_delimited(1, _length_delimited(1, label.encode()))
            entry = _length_delimited(1, self._label_key + _length_delimited(2, feature))
            self._labels[label] = entry
        return entry

    def encode(self, values: np.ndarray, labels: Sequence[str]) -> list[bytes]:
        """The serialized examples of ``values`` (rows x features, feature order) and labels."""
        n = len(labels)
        if n == 0:
            return []
        floats = np.ascontiguousarray(values[:, self._order], dtype="<f4").view(np.uint8)
        body = np.broadcast_to(self._template, (n, self._template.size)).copy()
        body[:, self._float_at.ravel()] = floats.reshape(n, -1)
        before = body[:, : self._cut]
        after = body[:, self._cut :]
        out = []
        for i, label in enumerate(labels):
            entry = self._label_entry(label)
            features = before[i].tobytes() + entry + after[i].tobytes()
            out.append(b"\x0a" + _varint(len(features)) + features)
        return out
