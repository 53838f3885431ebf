"""The ingest report: counts merge exactly, the JSON keeps its keys, and each check bites."""

import pytest

from tfx_metric_learning.components.example_gen import rows
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.report import CountsFn, IngestReport, RowCounts
from tfx_metric_learning.components.example_gen.settings import IngestSettings

BAD = [
    (3, {"reason": rows.NON_NUMERIC, "column": "a", "value": "x"}),
    (5, {"reason": rows.MISSING_LABEL}),
]


def _report(counts, train, evaluation, protocol="seen_classes"):
    return IngestReport(
        counts=counts,
        files=["f.csv"],
        spans=[],
        spans_left_out=[],
        spans_without_files=[],
        input_fingerprint="fp",
        label_column="label",
        feature_columns=["a", "b"],
        protocol=protocol,
        validation_fraction=0.0,
        splits=IngestReport.split_counts({"train": train, "eval": evaluation}),
    )


def test_batch_counts_and_their_merge_are_sums_keeping_the_first_example():
    one = RowCounts.of_batch("f1", 4, ["c1", "c1"], {"a": 1}, BAD)
    other = RowCounts.of_batch(
        "f2", 3, ["c2"], {"b": 2}, [(0, {"reason": rows.NON_NUMERIC, "column": "a", "value": "y"})]
    )
    merged = CountsFn().merge_accumulators([one, other])
    assert (merged.rows_read, merged.rows_written, merged.dropped) == (7, 3, 3)
    assert merged.classes == {"c1": 2, "c2": 1}
    assert merged.missing_values == {"a": 1, "b": 2}
    assert merged.bad_rows == {rows.NON_NUMERIC: 2, rows.MISSING_LABEL: 1}
    assert merged.bad_rows_by_file == {"f1": 2, "f2": 1}
    assert merged.non_numeric == {"a": {"count": 2, "example": "x", "file": "f1"}}
    assert one.non_numeric["a"]["count"] == 1  # merging copies, never aliases an input


def test_report_json_has_the_counts_at_the_top_and_reads_back():
    counts = RowCounts.of_batch("f.csv", 10, ["c1"] * 5 + ["c2"] * 5, {}, [])
    report = _report(counts, {"c1": 4, "c2": 4}, {"c1": 1, "c2": 1})
    data = report.to_dict()
    assert data["rows_read"] == 10 and data["splits"]["eval"] == {
        "rows": 2,
        "classes": {"c1": 1, "c2": 1},
    }
    assert "counts" not in data and "eval_classes" not in data  # None fields are left out
    assert IngestReport.from_dict(data) == report
    assert report.summarise() == (
        "rows read 10, kept 10, dropped 0 (none); missing feature values to impute 0; "
        "splits eval=2, train=8"
    )


def test_checks_name_what_is_wrong():
    settings = IngestSettings(validation_fraction=0.0)
    ok = RowCounts.of_batch("f.csv", 60, ["c1"] * 30 + ["c2"] * 30, {}, [])
    _report(ok, {"c1": 21, "c2": 21}, {"c1": 9, "c2": 9}).check(settings)  # usable: no error

    with pytest.raises(DataError, match="no data rows in f.csv"):
        _report(RowCounts(), {}, {}).check(settings)
    limit = settings.max_bad_row_fraction
    read = 1000
    bad = int(limit * read) + 1
    many_bad = RowCounts.of_batch(
        "f.csv", read, ["c1"] * (read - bad), {}, [(0, {"reason": rows.MISSING_LABEL})] * bad
    )
    with pytest.raises(DataError, match=f"{bad} of {read} rows .* in f.csv"):
        _report(many_bad, {"c1": 1}, {"c1": 1}).check(settings)
    at_limit = RowCounts.of_batch(
        "f.csv",
        read,
        ["c1"] * 500 + ["c2"] * 500,
        {},
        [(0, {"reason": rows.MISSING_LABEL})] * int(limit * read),
    )
    _report(at_limit, {"c1": 350, "c2": 350}, {"c1": 150, "c2": 150}).check(settings)
    text = RowCounts.of_batch(
        "f.csv", 10, [], {}, [(0, {"reason": rows.NON_NUMERIC, "column": "a", "value": "x"})] * 10
    )
    with pytest.raises(DataError, match="feature column 'a' is not numeric.*'x'"):
        _report(text, {}, {}).check(settings)
    with pytest.raises(DataError, match="split 'eval' has 1 class"):
        _report(ok, {"c1": 21, "c2": 30}, {"c1": 9}).check(settings)
