"""Four days of scheduled retraining on daily spans, each run a fresh CLI process.

Daily spans of the digits (``span_data``), ``--window 2``, a curated schema the first run
writes, and:

1. day 1: trains, is blessed and pushed;
2. day 2 (more data, one empty cell, warm start from day 1's model): the empty cell is
   imputed and counted, the span accepted, the model pushed;
3. day 3: one feature recorded in other units (x4): the DataValidator stops the run before
   Transform naming the feature, exit status 3, nothing trained or pushed;
4. day 4 (clean; cold start trained one step on purpose): span 3 is left out of the window,
   the model is not blessed against day 2's and not pushed;
5. day 5: the span gains a column, read with span 4 in one window: the DataValidator names
   the new column, exit status 3, the span recorded as rejected.

At the end the serving folder holds exactly day 1's and day 2's models, and ML Metadata holds
the span each run's ExampleGen resolved and the spans it read.
"""

import json
import os
import subprocess
import sys

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from tests.pipeline import span_data
from tests.saved_models import assert_same_weights
from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.example_gen.spec import SPANS_PROPERTY
from tfx_metric_learning.components.gallery_index.spec import SERVING_MODEL_DIR
from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.pipeline.cli import EXIT_ANOMALIES

pytestmark = pytest.mark.e2e

DAYS = {
    1: ["--warm-start"],  # asked for on the first day: nothing to start from yet
    2: ["--warm-start"],
    3: ["--warm-start"],
    4: ["--train-steps", "1"],
    5: [],
}


def run_day(tmp, day, extra):
    summary = tmp / f"day{day}.json"
    args = [
        "run",
        "--data", str(tmp / "data"),
        "--data-pattern", span_data.PATTERN,
        "--window", "2",
        "--schema", str(tmp / "schema.pbtxt"),
        "--pipeline-root", str(tmp / "root"),
        "--epochs", "5",
        "--summary-json", str(summary),
        *extra,
    ]  # fmt: skip
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-m", "tfx_metric_learning.pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    found = json.loads(summary.read_text()) if summary.exists() else None
    return done, found


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daily")
    out = {}
    for day, extra in DAYS.items():
        span_data.write_span(
            str(tmp / "data"),
            day,
            drift=day == 3,
            empty_cells=1 if day == 2 else 0,
            new_column=day == 5,
        )
        out[day] = run_day(tmp, day, extra)
        print(f"--- day {day}: exit {out[day][0].returncode}\n{out[day][0].stdout}")
    return tmp, out


def test_day_1_writes_the_schema_trains_and_pushes(days):
    tmp, out = days
    done, summary = out[1]
    assert done.returncode == 0, done.stderr
    assert "Wrote the curated schema" in done.stdout
    schema = (tmp / "schema.pbtxt").read_text()
    assert "jensen_shannon_divergence" in schema
    assert summary["ingest"]["span"] == 1 and summary["ingest"]["spans_read"] == [1]
    assert summary["blessed"] and summary["pushed_model"]
    assert "Spans: newest 1; read 1." in done.stdout
    assert "Cold start: --warm-start was asked, but nothing usable is in production" in done.stdout
    assert summary["training"]["warm_started_from"] is None


def test_day_2_warm_starts_from_day_1_and_pushes(days):
    _, out = days
    done, summary = out[2]
    assert done.returncode == 0, done.stderr
    assert summary["ingest"]["spans_read"] == [1, 2]
    # the warm start is production: day 1's pushed model, as the production record names it
    assert summary["production"]["status"] == "found"
    assert "Production at the start: version" in done.stdout
    assert "Warm start from: production version" in done.stdout
    day1_version = os.path.basename(out[1][1]["pushed_model"])
    assert summary["production"]["version"] == day1_version
    assert summary["blessed"] and summary["pushed_model"]
    assert "Warm start from:" in done.stdout
    # one empty cell: imputed and counted, not a reason to reject the span
    assert summary["validation"]["accepted"] and not summary["validation"]["anomalies"]
    assert summary["ingest"]["missing_values_imputed"] == 1


def test_day_3_stops_before_transform_naming_the_drifted_feature(days):
    _, out = days
    done, summary = out[3]
    assert done.returncode == EXIT_ANOMALIES, done.stderr
    (feature,) = span_data.DRIFTED
    assert (
        "Validation of span 3 against the schema and span 2: stopped before Transform, "
        f"nothing trained or pushed: {feature}: High approximate Jensen-Shannon divergence"
    ) in done.stdout
    validation = summary["validation"]
    assert not validation["accepted"]
    assert [f["feature"] for f in validation["anomalies"]] == [feature]
    # the anomalies stay in the published artifact
    diff = os.path.join(validation["anomalies_uri"], "Split-new_span", "SchemaDiff.pb")
    assert os.path.getsize(diff) > 0
    states = summary["components"]
    for node in ("Transform", "PairGen", "Trainer", "RetrievalEvaluator", "Pusher"):
        assert states.get(node) in (None, "CANCELED"), (node, states)
    assert summary.get("training") is None and summary["pushed_model"] is None


def test_day_4_leaves_the_rejected_span_out_and_is_not_blessed(days):
    tmp, out = days
    done, summary = out[4]
    assert done.returncode == 0, done.stderr
    assert summary["ingest"]["spans_read"] == [2, 4]
    assert summary["ingest"]["spans_left_out"] == [3]
    assert summary["validation"]["accepted"]
    assert summary["validation"]["baseline_span"] == 2  # the last accepted span, not 3
    assert summary["production"]["version"] == os.path.basename(out[2][1]["pushed_model"])
    assert summary["blessed"] is False and summary["pushed_model"] is None
    assert any("worse than the baseline" in r for r in summary["reasons"])
    assert 3 in ledger.rejected(str(tmp / "root" / "span_verdicts"))


def test_day_5_names_the_column_the_span_gained_and_rejects_the_span(days):
    tmp, out = days
    done, summary = out[5]
    assert done.returncode == EXIT_ANOMALIES, done.stdout + done.stderr
    assert summary["ingest"]["spans_read"] == [4, 5]
    assert f"{span_data.NEW_COLUMN}: New column" in done.stdout
    assert [f["feature"] for f in summary["validation"]["anomalies"]] == [span_data.NEW_COLUMN]
    assert set(ledger.rejected(str(tmp / "root" / "span_verdicts"))) == {3, 5}


def test_serving_holds_day_1_and_day_2_and_mlmd_the_spans_read(days):
    tmp, out = days
    serving = tmp / "root" / "serving_model"
    pushed = sorted(v for v in os.listdir(serving) if v.isdigit())
    assert [str(serving / p) for p in pushed] == [
        out[1][1]["pushed_model"],
        out[2][1]["pushed_model"],
    ]
    for day, version in zip((1, 2), pushed, strict=True):
        # what was pushed is the Trainer's model re-saved with the lookup signature
        resaved = os.path.join(out[day][1]["gallery"]["uri"], SERVING_MODEL_DIR, "saved_model.pb")
        with open(resaved, "rb") as a, open(serving / version / "saved_model.pb", "rb") as b:
            assert a.read() == b.read()
        assert_same_weights(
            os.path.join(out[day][1]["model_uri"], "Format-Serving"), str(serving / version)
        )
    # the production record names day 2's model, and the history both pushes
    production = production_record.read(str(serving))
    assert production.record["version"] == pushed[1]
    assert production.record["previous_version"] == pushed[0]
    assert [r["version"] for r in production_record.history(str(serving))] == pushed
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(tmp / "root" / "metadata.sqlite")
    store = metadata_store.MetadataStore(connection)
    examples = sorted(store.get_artifacts_by_type("Examples"), key=lambda a: a.id)
    from_example_gen = [
        (a.custom_properties["span"].int_value, a.custom_properties[SPANS_PROPERTY].string_value)
        for a in examples
        if SPANS_PROPERTY in a.custom_properties
    ]
    assert from_example_gen == [(1, "1"), (2, "1,2"), (3, "2,3"), (4, "2,4"), (5, "4,5")]
