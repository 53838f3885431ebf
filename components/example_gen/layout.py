"""The layout of the input files: their format, columns, feature names and label; the labels.

Used by the ExampleGen executor before it reads the rows, and by the CLI before a run starts
(``pipeline/preflight.py``), so both refuse the same files with the same message:

- every file has one format (CSV or TFRecord); for CSV, every file has the same header, except
  with spans: a span's header may gain or lose columns (a change of schema the DataValidator
  judges, as it does with ``--window 1``). The run's columns are then the union (the first
  file's, then each column another file adds, in the order it first appears), and a row of a
  file without a column has a missing value (NaN) there, counted with the missing values.
  Every file must hold the label column;
- the feature names are the columns sanitised by one rule for both formats
  (``rows.sanitize_header``), and two columns that would share a name are refused;
- the label column exists (a hint names another delimiter when the header reads as one
  column).

``count_labels`` reads the label of every row (a streaming pass over the files, CSV records
parsed by Python's ``csv`` module, so quoted newlines are kept): what the split plan needs.
"""

from __future__ import annotations

import collections
import dataclasses

from tfx_metric_learning.components.example_gen import files, rows
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.settings import IngestSettings


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """What the input files hold: format, raw and sanitised columns, the label's position."""

    paths: list[str]
    tfrecord: bool
    columns: list[str]  # as in the files
    names: list[str]  # sanitised feature names, one per column
    label_index: int
    header: files.CsvHeader | None  # CSV only: the first file's
    # CSV files whose headers differ (spans): every file's header; else empty
    file_headers: dict[str, files.CsvHeader] = dataclasses.field(default_factory=dict)

    @property
    def label_name(self) -> str:
        """The label's feature name."""
        return self.names[self.label_index]

    @property
    def feature_names(self) -> list[str]:
        """Every feature name but the label's, in column order."""
        return [n for i, n in enumerate(self.names) if i != self.label_index]

    @property
    def renamed(self) -> dict[str, str]:
        """Raw column -> feature name, for every column."""
        return dict(zip(self.columns, self.names, strict=True))

    def header_of(self, path: str) -> files.CsvHeader:
        """The CSV header of ``path`` (one of ``paths``)."""
        return self.file_headers.get(path, self.header)

    def file_names(self, path: str) -> tuple[list[str], int]:
        """``(feature name of each of the columns of path, the label's index among them)``."""
        columns = self.header_of(path).columns
        renamed = self.renamed
        return [renamed[c] for c in columns], columns.index(self.columns[self.label_index])


def header_change(theirs: list[str], ours: list[str]) -> str:
    """How the columns ``theirs`` differ from ``ours``: columns added, missing or reordered."""
    added = [c for c in theirs if c not in ours]
    lacking = [c for c in ours if c not in theirs]
    parts = []
    if added:
        parts.append(f"adds column(s) {', '.join(map(repr, added))}")
    if lacking:
        parts.append(f"lacks column(s) {', '.join(map(repr, lacking))}")
    return "; ".join(parts) or "has the same columns in another order"


def read_layout(paths: list[str], settings: IngestSettings) -> InputLayout:
    """The layout of ``paths`` (sorted, non-empty), or a ``DataError`` naming the file."""
    if not paths:
        raise DataError("no input files")
    tfrecord = all(files.is_tfrecord(p) for p in paths)
    if not tfrecord and any(files.is_tfrecord(p) for p in paths):
        raise DataError(f"the input mixes CSV and TFRecord files ({paths[0]}, ...); use one format")
    header, headers = None, {}
    if tfrecord:
        columns = files.tfrecord_columns(paths[0])
    else:
        headers = {p: files.read_header(p, settings.encoding, settings.delimiter) for p in paths}
        header = headers[paths[0]]
        columns = list(header.columns)
        for other in paths[1:]:
            theirs = headers[other].columns
            if theirs == header.columns:
                continue
            if not settings.uses_spans:
                raise DataError(
                    f"{other} has a different CSV header than {paths[0]}: it "
                    f"{header_change(theirs, header.columns)} (without spans every file "
                    f"needs the same columns)"
                )
            columns.extend(c for c in theirs if c not in columns)
    names = rows.sanitize_header(columns)
    try:
        label_index = rows.resolve_label_column(columns, settings.label_column, paths[0])
    except DataError as e:
        raise DataError(f"{e}{files.label_hint(header) if header else ''}") from None
    for path, theirs in headers.items():
        if columns[label_index] not in theirs.columns:
            raise DataError(
                f"label column {columns[label_index]!r} does not exist in {path}; "
                f"columns: {', '.join(theirs.columns)}"
            )
    # every file's header when they differ (a file may then match the union, not the first)
    differing = headers if any(h.columns != columns for h in headers.values()) else {}
    layout = InputLayout(paths, tfrecord, columns, names, label_index, header, differing)
    if not layout.feature_names:
        raise DataError(
            f"{paths[0]} has no feature columns besides the label {layout.label_name!r}"
        )
    return layout


def count_labels(layout: InputLayout, settings: IngestSettings) -> dict[str, int]:
    """Rows per label over every file (rows without a label are left out)."""
    counts: collections.Counter[str] = collections.Counter()
    label_column = layout.columns[layout.label_index]
    for path in layout.paths:
        if layout.tfrecord:
            for record in files.iter_tfrecords(path):
                example = files.parse_example(record, path)
                feature = example.features.feature.get(label_column)
                kind = feature.WhichOneof("kind") if feature is not None else None
                values = list(getattr(feature, kind).value) if kind else []
                label = rows.normalise_label(values[0] if len(values) == 1 else None)
                if label is not None:
                    counts[label] += 1
        else:
            header = layout.header_of(path)
            width = len(header.columns)
            _, label_index = layout.file_names(path)
            for fields in files.iter_csv_rows(path, settings.encoding, header):
                if len(fields) == width:
                    label = rows.normalise_label(fields[label_index])
                    if label is not None:
                        counts[label] += 1
    return dict(counts)
