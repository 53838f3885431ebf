"""The end-of-run summary says how training started."""

from tfx_metric_learning.pipeline import run_summary

TRAINING = {"loss": "supcon", "num_replicas": 1, "strategy": "none", "total_steps": 10}


def test_a_warm_start_asked_for_without_production_is_called_a_cold_start():
    asked = TRAINING | {"warm_start_asked": True, "warm_started_from": None}
    text = run_summary.format_summary({"training": asked})
    assert "Cold start: --warm-start was asked, but nothing usable is in production yet" in text
    started = asked | {"warm_started_from": "/serving/100"}
    text = run_summary.format_summary(
        {"training": started, "production": {"status": "found", "reason": "v", "version": "100"}}
    )
    assert "Warm start from: production version 100, /serving/100" in text
    assert "Cold start" not in text
    assert "start" not in run_summary.format_summary({"training": TRAINING}).lower()


def test_spans_are_printed_as_the_data_pattern_names_them():
    ingest = {"span": 20456, "spans_read": [20455, 20456], "spans_left_out": []} | {
        "rows_read": 10,
        "rows_dropped": {},
        "missing_values_imputed": 0,
        "split_rows": {"train": 10},
    }
    named = ingest | {
        "span_names": {
            "span": "2026-01-02",
            "spans_read": ["2026-01-01", "2026-01-02"],
            "spans_left_out": [],
            "spans_without_files": ["2026-01-03"],
        }
    }
    text = run_summary.format_summary({"ingest": named})
    assert "Spans: newest 2026-01-02; read 2026-01-01, 2026-01-02." in text
    assert "Span(s) 2026-01-03 have no files yet: the newest readable span is 2026-01-02." in text
    assert "Spans: newest 20456; read 20455, 20456." in run_summary.format_summary(
        {"ingest": ingest}
    )
