"""Spans found as TFX's driver finds them, and the rolling window over them."""

import pytest

from tfx_metric_learning.components.example_gen import spans
from tfx_metric_learning.components.example_gen.files import DataError


def touch(root, *paths):
    for path in paths:
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("a,label\n1,x\n")


def test_span_specs_are_recognised_and_malformed_ones_named():
    assert spans.has_spans("span-{SPAN}/*.csv")
    assert spans.has_spans("{YYYY}-{MM}-{DD}/*.csv")
    assert not spans.has_spans("*.csv")
    with pytest.raises(DataError, match="Only one {SPAN}"):
        spans.has_spans("span-{SPAN}/{SPAN}.csv")
    with pytest.raises(DataError, match="Span or Date spec is not present"):
        spans.has_spans("v{VERSION}/*.csv")


def test_every_span_is_found_at_its_newest_version(tmp_path):
    touch(
        tmp_path,
        "span-1/v1/a.csv",
        "span-1/v3/a.csv",  # a corrected re-delivery of span 1
        "span-2/v1/a.csv",
        "span-10/v2/a.csv",
    )
    found = spans.find_spans(str(tmp_path), "span-{SPAN}/v{VERSION}/*.csv")
    assert {n: (s.version, s.pattern) for n, s in found.items()} == {
        1: (3, "span-1/v3/*.csv"),
        2: (1, "span-2/v1/*.csv"),
        10: (2, "span-10/v2/*.csv"),
    }
    assert spans.span_paths(str(tmp_path), found[1]) == [str(tmp_path / "span-1/v3/a.csv")]


def test_zero_padded_spans_keep_their_tokens(tmp_path):
    touch(tmp_path, "span-01/a.csv", "span-02/a.csv")
    found = spans.find_spans(str(tmp_path), "span-{SPAN:2}/*.csv")
    assert found[2].pattern == "span-02/*.csv"


def test_date_folders_are_days_since_1970(tmp_path):
    touch(tmp_path, "2026-11-28/a.csv", "2026-11-30/a.csv")
    found = spans.find_spans(str(tmp_path), "{YYYY}-{MM}-{DD}/*.csv")
    days = sorted(found)
    assert days[1] - days[0] == 2  # a missing day is no span
    assert found[days[1]].pattern == "2026-11-30/*.csv"


def test_the_window_takes_the_newest_spans_and_skips_rejected_versions(tmp_path):
    all_spans = {n: spans.Span(n, 1, f"span-{n}/*") for n in (1, 2, 3, 5)}
    read, out = spans.window(all_spans, newest=5, size=2)
    assert [s.number for s in read] == [3, 5] and out == []
    # span 3 was rejected at version 1: left out, the window reaches back to span 2
    read, out = spans.window(all_spans, newest=5, size=2, rejected={3: 1})
    assert [s.number for s in read] == [2, 5] and [s.number for s in out] == [3]
    # a corrected version of span 3 is read again
    all_spans[3] = spans.Span(3, 2, "span-3/v2/*")
    read, _ = spans.window(all_spans, newest=5, size=2, rejected={3: 1})
    assert [s.number for s in read] == [3, 5]
    # the window never reaches past the newest span, nor past the data there is
    read, _ = spans.window(all_spans, newest=2, size=10)
    assert [s.number for s in read] == [1, 2]
    with pytest.raises(DataError, match="span 4 has no files"):
        spans.window(all_spans, newest=4, size=1)


def test_a_dated_span_is_named_by_its_date():
    # TFX numbers {YYYY}-{MM}-{DD} spans by days since 1970-01-01
    assert spans.span_name(20456, "{YYYY}-{MM}-{DD}/*.csv") == "2026-01-03"
    assert spans.span_name(0, "d/{YYYY}{MM}{DD}.csv") == "1970-01-01"
    assert spans.span_name(20456, "span-{SPAN}/*.csv") == "20456"


def test_a_newer_span_folder_without_files_is_found(tmp_path):
    for span, files in ((1, ["d.csv"]), (2, ["d.csv"]), (3, []), (4, ["notes.txt"])):
        folder = tmp_path / f"span-{span}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("a,label\n1,x\n")
    pattern = "span-{SPAN}/*.csv"
    assert max(spans.find_spans(str(tmp_path), pattern)) == 2
    assert spans.empty_newer_spans(str(tmp_path), pattern, 2) == [3, 4]
    assert spans.empty_newer_spans(str(tmp_path), pattern, 4) == []
    # no span folders when the file name carries the span
    assert spans.empty_newer_spans(str(tmp_path), "d-{SPAN}.csv", 0) == []


def test_the_window_stops_at_its_size_and_matches_rejected_versions_exactly():
    found = {n: spans.Span(n, v, f"span-{n}/*.csv") for n, v in ((1, 1), (2, 1), (3, 1))}
    # span 1 was rejected, but a window of 2 never reaches it: nothing is left out
    read, out = spans.window(found, newest=3, size=2, rejected={1: 1})
    assert [s.number for s in read] == [2, 3] and out == []
    # a rejection of a newer version than the one found does not leave the span out
    read, out = spans.window(found, newest=3, size=3, rejected={2: 2})
    assert [s.number for s in read] == [1, 2, 3] and out == []


def test_span_folders_are_only_looked_for_when_the_folder_names_the_span(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("a,label\n1,x\n")
    assert spans.empty_newer_spans(str(tmp_path), "data/*.csv", 0) == []
    # a file named like a span folder, before the folder in name order: skipped, not an end
    (tmp_path / "span-3").write_text("a file named like a span folder")
    (tmp_path / "span-4").mkdir()
    assert spans.empty_newer_spans(str(tmp_path), "span-{SPAN}/*.csv", 2) == [4]
