"""The ingest report: what ExampleGen read, kept, dropped and wrote, and the checks on it.

Two dataclasses:

- ``RowCounts``: the counts of a batch of rows (read, written, dropped by reason and file,
  missing values per feature, non-numeric values per column, rows per class). Beam merges
  the batches' counts with ``CountsFn`` (``RowCounts.merge``: sums; for a non-numeric column
  the first example seen is kept).
- ``IngestReport``: the counts of every row with what the read and the split add (files,
  spans, columns, protocol, rows and classes per split). It is written as
  ``spec.REPORT_FILE`` (``to_json``; the counts' keys at the top level, as the run report and
  the tests read them), read back (``from_dict``), summarised in one log line
  (``summarise``) and checked (``check``: ``DataError`` naming the file, column or split when
  the data is unusable).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import apache_beam as beam

from tfx_metric_learning.components.example_gen import rows, split_plan
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.example_gen.split_plan import EVAL, TRAIN, VALID


def _add(counts: dict, key: Any, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclasses.dataclass
class RowCounts:
    """Counts of rows: read, written, dropped (by reason and by file), per class."""

    rows_read: int = 0
    rows_written: int = 0
    bad_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    bad_rows_by_file: dict[str, int] = dataclasses.field(default_factory=dict)
    missing_values: dict[str, int] = dataclasses.field(default_factory=dict)
    # column -> {"count", "example" (the first value seen), "file"}
    non_numeric: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    classes: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def of_batch(
        cls,
        filename: str,
        read: int,
        labels: list[str],
        missing: dict[str, int],
        bad: list[tuple[int, dict[str, Any]]],
    ) -> RowCounts:
        """The counts of one batch of ``filename``.

        ``read`` rows, the kept rows' ``labels``, the ``missing`` values per feature and the
        ``bad`` rows (index, ``rows.validate_row``'s info).
        """
        counts = cls(rows_read=read, rows_written=len(labels), missing_values=dict(missing))
        for label in labels:
            _add(counts.classes, label, 1)
        for _, info in bad:
            _add(counts.bad_rows, info["reason"], 1)
            _add(counts.bad_rows_by_file, filename, 1)
            if info["reason"] == rows.NON_NUMERIC:
                entry = counts.non_numeric.setdefault(
                    info["column"], {"count": 0, "example": info["value"], "file": filename}
                )
                entry["count"] += 1
        return counts

    def merge(self, other: RowCounts) -> RowCounts:
        """Adds ``other``'s counts to these; returns self."""
        self.rows_read += other.rows_read
        self.rows_written += other.rows_written
        for mine, theirs in (
            (self.bad_rows, other.bad_rows),
            (self.bad_rows_by_file, other.bad_rows_by_file),
            (self.missing_values, other.missing_values),
            (self.classes, other.classes),
        ):
            for k, v in theirs.items():
                _add(mine, k, v)
        for column, entry in other.non_numeric.items():
            if column in self.non_numeric:
                self.non_numeric[column]["count"] += entry["count"]
            else:
                self.non_numeric[column] = dict(entry)
        return self

    @property
    def dropped(self) -> int:
        return sum(self.bad_rows.values())


class CountsFn(beam.CombineFn):
    """Merges ``RowCounts`` (``RowCounts.merge``)."""

    def create_accumulator(self) -> RowCounts:
        return RowCounts()

    def add_input(self, acc: RowCounts, counts: RowCounts) -> RowCounts:
        return acc.merge(counts)

    def merge_accumulators(self, accumulators) -> RowCounts:
        merged = RowCounts()
        for acc in accumulators:
            merged.merge(acc)
        return merged

    def extract_output(self, acc: RowCounts) -> RowCounts:
        return acc


@dataclasses.dataclass
class IngestReport:
    """The whole ingest: the counts of every row, what was read and how it was split."""

    counts: RowCounts
    files: list[str]
    spans: list[dict[str, Any]]  # {"span", "version", "files"} per span read
    spans_left_out: list[dict[str, Any]]  # {"span", "version"}: rejected by validation
    spans_without_files: list[int]
    input_fingerprint: str
    label_column: str
    feature_columns: list[str]
    protocol: str
    validation_fraction: float
    splits: dict[str, dict[str, Any]]  # split -> {"rows", "classes": {label: rows}}
    delimiter: str | None = None  # CSV only
    encoding: str | None = None  # CSV only
    eval_classes: list[str] | None = None  # unseen_classes only
    validation_classes: list[str] | None = None  # unseen_classes only

    @staticmethod
    def split_counts(per_split: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
        """``{split: {label: rows}}`` -> the report's ``splits`` entry."""
        return {
            name: {"rows": sum(classes.values()), "classes": classes}
            for name, classes in per_split.items()
        }

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "counts"}
        out = {k: v for k, v in out.items() if v is not None}
        return {**dataclasses.asdict(self.counts), **out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        names = {f.name for f in dataclasses.fields(RowCounts)}
        counts = RowCounts(**{k: v for k, v in data.items() if k in names})
        return cls(counts=counts, **{k: v for k, v in data.items() if k not in names})

    def summarise(self) -> str:
        """One line: rows read, written, dropped (by reason), values imputed, split sizes."""
        c = self.counts
        missing = sum(c.missing_values.values())
        splits = ", ".join(f"{k}={v['rows']}" for k, v in sorted(self.splits.items()))
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(c.bad_rows.items())) or "none"
        return (
            f"rows read {c.rows_read}, kept {c.rows_written}, dropped {c.dropped} "
            f"({reasons}); missing feature values to impute {missing}; splits {splits}"
        )

    def check(self, settings: IngestSettings) -> None:
        """Raises ``DataError`` naming what is wrong when the ingested data is unusable.

        In order: a feature column mostly non-numeric (more than ``max_bad_row_fraction`` of
        the rows read), no rows, too many unusable rows (naming the file with most), unknown
        eval classes, then the split plan's problems (``split_plan.split_problems``,
        ``split_plan.validation_problems``).
        """
        c = self.counts
        read = c.rows_read
        limit = settings.max_bad_row_fraction
        for column, entry in sorted(c.non_numeric.items()):
            if entry["count"] > limit * max(read, 1):
                raise DataError(
                    f"feature column {column!r} is not numeric: {entry['count']} of {read} rows "
                    f"hold non-numeric values such as {entry['example']!r} (in {entry['file']}); "
                    f"drop the column or encode it as numbers"
                )
        if read == 0:
            raise DataError(f"no data rows in {', '.join(self.files)}")
        if c.dropped > limit * read:
            worst = max(c.bad_rows_by_file.items(), key=lambda kv: kv[1])
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(c.bad_rows.items()))
            raise DataError(
                f"{c.dropped} of {read} rows ({c.dropped / read:.1%}) are unusable, more than "
                f"the allowed {limit:.1%}; {worst[1]} of them in {worst[0]} ({reasons})"
            )
        train, evaluation = (self.splits[name]["classes"] for name in (TRAIN, EVAL))
        valid = self.splits.get(VALID, {}).get("classes", {})
        if settings.protocol == "unseen_classes":
            unknown = split_plan.unknown_eval_classes(c.classes, settings.eval_classes)
            if unknown:
                raise DataError(unknown)
        before_validation = {k: train.get(k, 0) + valid.get(k, 0) for k in {*train, *valid}}
        found = split_plan.split_problems(
            before_validation, evaluation, settings.protocol, settings.eval_fraction
        ) or split_plan.validation_problems(
            train, valid, settings.protocol, settings.validation_fraction
        )
        if found:
            raise DataError("; ".join(found))
