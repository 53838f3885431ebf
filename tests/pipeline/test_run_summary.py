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


def test_the_gallery_line_says_the_index_and_the_threshold_or_its_absence():
    index = {"rows": 1797, "kind": "ivf_flat", "nprobe": 8, "nlist": 169, "k": 10}
    index["recall_at_k"] = 0.9931
    match = {
        "threshold": 0.81234,
        "precision": 0.99,
        "recall": 0.93,
        "false_accept_rate": 0.2,
        "queries": 539,
        "target_precision": 0.99,
    }
    line = run_summary.gallery_line({"index": index, "match": match}, pushed=True)
    assert line == (
        "Gallery index: 1797 rows, IVF, nprobe 8 of 169, recall@10 0.9931; match threshold "
        "0.8123 (precision 0.9900, recall 0.9300, false accepts 0.2000 on 539 eval queries); "
        "pushed with the model."
    )
    none = run_summary.gallery_line(
        {"index": {**index, "kind": "flat"}, "match": {**match, "threshold": None}}, pushed=False
    )
    assert "1797 rows, exact; no threshold reaches precision 0.99" in none
    assert none.endswith("not pushed.")
