"""Rows files for lookups: a CSV file of raw features, with ids and maybe labels.

``read_table`` reads what ``metric-learning embed``/``query`` take and what a gallery
catalogue (``--gallery PATH``) is: a CSV file, header first, in any encoding (the commands'
``--encoding``; a catalogue is read as UTF-8) and delimiter (detected) the pipeline reads
(ExampleGen's ``files`` helpers, through TensorFlow's filesystems, so a ``gs://`` catalogue
works like a local one). Columns are sanitised into feature names by the
pipeline's rule (``rows.sanitize_header``); a missing or non-numeric value is NaN, which the
model imputes. The label column (when the file has it) and the id column are not features.
Blank lines are skipped; rows of the wrong number of fields are skipped and counted. A
``.tfrecord``/``.tfrecord.gz`` file (``files.is_tfrecord``) of tf.Examples is read too: each
numeric feature's first value (a feature an example lacks is NaN), the label and id
features as text, a row's "line" being its record's number.

``check_catalogue`` is what a gallery catalogue must also satisfy, each refused with a
message naming the file and what is wrong: at least one row; every feature the model takes
(the lacking ones named; other columns are ignored and named in ``Table.ignored``); an id
column whose ids are non-empty and unique (the first repeats named with their lines).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfx_metric_learning.components.example_gen import files, rows
from tfx_metric_learning.components.example_gen.files import DataError

SHOWN = 5  # names or repeats listed in a message


@dataclasses.dataclass
class Table:
    """The rows of a file: feature columns, labels (or None), ids, and what was left out."""

    path: str
    features: dict[str, np.ndarray]  # {feature name: float32 values}
    labels: np.ndarray | None  # str per row, when the file has the label column
    ids: list[str]  # the id column's values, or the rows' line numbers
    lines: list[int]  # each row's line in the file (the header is line 1)
    skipped: int  # rows of the wrong number of fields
    id_column: str = ""  # the column the ids came from ("" = line numbers)
    ignored: list[str] = dataclasses.field(default_factory=list)  # columns no feature uses

    def __len__(self) -> int:
        return len(self.ids)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_header(path: str, id_column: str, encoding: str = "utf-8", delimiter: str = "") -> None:
    """Refuses a catalogue whose header lacks ``id_column``.

    What a run checks before it starts; the rows are checked by the GalleryIndex, against
    the trained model's features.
    """
    columns = _columns(path, encoding, delimiter)
    if id_column not in columns:
        raise DataError(f"{path} has no id column {id_column!r} (its columns: {_listed(columns)})")


def _columns(path: str, encoding: str, delimiter: str) -> list[str]:
    if files.is_tfrecord(path):
        return files.tfrecord_columns(path)
    return files.read_header(path, encoding, delimiter).columns


def _value(feature) -> float | str | None:
    """A tf.Example feature's first value (None when it has none)."""
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    return values[0] if len(values) else None


def _read_tfrecord(path: str, label_column: str, id_column: str) -> Table:
    """``read_table`` of a tf.Example TFRecord file: numeric features, label, id."""
    found: dict[str, dict[int, float]] = {}
    labels: list[str] = []
    ids: list[str] = []
    has_label = False
    for number, record in enumerate(files.iter_tfrecords(path), 1):
        features = files.parse_example(record, path).features.feature
        for name, feature in features.items():
            if name in (label_column, id_column):
                continue
            value = _value(feature)
            if isinstance(value, (int, float)):
                found.setdefault(name, {})[number - 1] = float(value)
        has_label = has_label or label_column in features
        label = _value(features[label_column]) if label_column in features else None
        labels.append(rows.normalise_label(label) or "")
        item = _value(features[id_column]) if id_column and id_column in features else None
        if id_column:
            ids.append(
                item.decode("utf-8", "replace").strip()
                if isinstance(item, bytes)
                else ""
                if item is None
                else str(item)
            )
        else:
            ids.append(str(number))
    count = len(ids)
    columns = {}
    for name, values in found.items():
        column = np.full(count, np.nan, np.float32)
        column[list(values)] = list(values.values())
        columns[rows.sanitize_header([name])[0]] = column
    return Table(
        path=path,
        features=columns,
        labels=np.array(labels, dtype=object) if has_label else None,
        ids=ids,
        lines=list(range(1, count + 1)),
        skipped=0,
        id_column=id_column,
    )


def read_table(
    path: str,
    *,
    label_column: str = "label",
    id_column: str = "",
    encoding: str = "utf-8",
    delimiter: str = "",
) -> Table:
    """The rows of the CSV file ``path`` (see the module doc); an empty file has no rows."""
    if id_column:
        check_header(path, id_column, encoding, delimiter)
    if files.is_tfrecord(path):
        return _read_tfrecord(path, label_column, id_column)
    header = files.read_header(path, encoding, delimiter)
    names = rows.sanitize_header(header.columns)
    label_at = header.columns.index(label_column) if label_column in header.columns else None
    id_at = header.columns.index(id_column) if id_column else None
    width = len(header.columns)
    values, labels, ids, lines = [], [], [], []
    skipped = 0
    for number, fields in enumerate(files.iter_csv_rows(path, encoding, header), 2):
        if fields == [] or fields == [""]:
            continue
        if len(fields) != width:
            skipped += 1
            continue
        parsed = [rows.parse_value(v)[0] for v in fields]
        values.append([np.nan if v is None else v for v in parsed])
        if label_at is not None:
            labels.append(rows.normalise_label(fields[label_at]) or "")
        ids.append(fields[id_at].strip() if id_at is not None else str(number))
        lines.append(number)
    table = np.asarray(values, np.float32).reshape(len(values), width)
    special = {j for j in (label_at, id_at) if j is not None}
    features = {names[j]: table[:, j] for j in range(width) if j not in special}
    return Table(
        path=path,
        features=features,
        labels=np.array(labels, dtype=object) if label_at is not None else None,
        ids=ids,
        lines=lines,
        skipped=skipped,
        id_column=id_column,
    )


def check_catalogue(table: Table, feature_names: list[str]) -> Table:
    """``table`` holding only ``feature_names``, or a ``DataError`` naming what is wrong."""
    where = f"the gallery catalogue {table.path}"
    if not len(table):
        skipped = f" ({table.skipped} of the wrong number of fields)" if table.skipped else ""
        raise DataError(f"{where} has no rows{skipped}: there is nothing to index")
    lacking = sorted(set(feature_names) - set(table.features))
    if lacking:
        raise DataError(
            f"{where} lacks feature(s) {_listed(lacking)} of the {len(feature_names)} the model "
            f"takes: a gallery must have the features the model was trained on"
        )
    empty = [line for line, i in zip(table.lines, table.ids, strict=True) if not i]
    if empty:
        raise DataError(
            f"{where} has rows without an id (column {table.id_column!r}) on line(s) "
            f"{_listed([str(n) for n in empty])}"
        )
    first: dict[str, int] = {}
    repeats = []
    for line, item in zip(table.lines, table.ids, strict=True):
        if item in first:
            repeats.append(f"{item!r} on lines {first[item]} and {line}")
        else:
            first[item] = line
    if repeats:
        raise DataError(
            f"{where}: {len(repeats)} id(s) repeat ({_listed(repeats)}): each item of a gallery "
            f"needs its own id (column {table.id_column!r})"
        )
    ignored = sorted(set(table.features) - set(feature_names))
    features = {n: table.features[n] for n in feature_names}
    return dataclasses.replace(table, features=features, ignored=ignored)
