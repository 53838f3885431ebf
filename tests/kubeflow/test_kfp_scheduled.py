"""Four days of scheduled retraining through the compiled spec, on both backends' stand-ins.

The pipeline is compiled once, as a user would for a schedule (``--data-pattern`` spans,
``--window 2``, a curated schema written first by ``metric-learning schema``, ``--warm-start``;
local folders stand for buckets every pod mounts: ``--allow-local-paths``), then run four
times by ``kfp_local.LocalBackend`` in each mode, a new span arriving before each run, against
one metadata store and one cache, as a backend keeps them across a schedule:

1. span 1: nothing in production; trains, is blessed and pushed; the production record names
   the pushed version;
2. span 2: ExampleGen runs again (no cache replays day 1) and reads spans 1 and 2; the
   production model (day 1's) is the evaluator's baseline and the Trainer's warm start;
   blessed and pushed; the record names day 2's version;
3. span 3, one feature recorded x4: the DataValidator rejects it, Transform's compiled
   condition skips it and nothing after it runs;
4. span 4, with the ``training`` parameter of a worse model (another loss family, one step,
   cold): the window leaves the rejected span out, PairGen builds what that loss consumes,
   the model is not blessed against production and not pushed; the production model, the
   same as on day 3, comes from the cache;
5. day 4's run submitted again (no new span, the same parameters): the plan finds the same
   files and record, so every task but the plan and the Pusher comes from the cache.

After every day the serving folder and the production record are checked: they change only
on the days a model is pushed, and then to exactly that model.
"""

import json
import os

import pytest

from tests.kubeflow.kfp_local import MODES, StoredArtifact
from tests.kubeflow.scenarios import AGAIN
from tests.saved_models import assert_same_weights
from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.kubeflow import run_plan

pytestmark = pytest.mark.e2e

DOWNSTREAM = ("Transform", "PairGen", "Trainer", "RetrievalEvaluator", "Pusher")


@pytest.fixture(params=MODES)
def days(request, stand_in_runs):
    return stand_in_runs[request.param].result()


def _artifact(backend, run_id, task, title) -> StoredArtifact:
    (found,) = [
        a
        for a in backend.store
        if a.run_id == run_id and a.task == task and a.schema_title == title
    ]
    return found


def _json(artifact, name):
    with open(os.path.join(artifact.uri, name)) as f:
        return json.load(f)


def _states(days, day):
    return {name: r.state for name, r in days["records"][day].items()}


def test_every_day_reads_its_new_span_no_cache_replays_ingestion(days):
    backend = days["backend"]
    for day, spans_read in ((1, "1"), (2, "1,2"), (3, "2,3"), (4, "2,4")):
        states = _states(days, day)
        assert states[run_plan.TASK] == "COMPLETE", (day, states)
        assert states["FileBasedExampleGen"] == "COMPLETE", (day, states)
        # the production model is read again after each push (days 1 and 2), else cached
        expected = "CACHED" if day == 4 else "COMPLETE"
        assert states["ProductionModel"] == expected, (day, states)
        examples = _artifact(backend, f"day-{day}", "FileBasedExampleGen", "tfx.Examples")
        assert examples.metadata["span"] == day
        assert examples.metadata["spans"] == spans_read
        assert examples.metadata["input_fingerprint"]
    # what does not depend on the day's data comes from the cache after day 1
    for day in (2, 3, 4):
        assert _states(days, day)["ImportSchemaGen"] == "CACHED"


def test_day_1_has_no_production_and_pushes(days):
    backend, serving = days["backend"], days["serving"]
    states = _states(days, 1)
    assert all(s == "COMPLETE" or s == "CACHED" for s in states.values()), states
    found = _json(_artifact(backend, "day-1", "ProductionModel", "tfx.Model"), "production.json")
    assert found["status"] == "none" and "no production record" in found["reason"]
    record = _json(
        _artifact(backend, "day-1", "RetrievalEvaluator", "tfx.ModelEvaluation"), "evaluation.json"
    )
    assert record["blessed"] is True and record["baseline_model"] is None
    pushed = _artifact(backend, "day-1", "Pusher", "tfx.PushedModel")
    assert pushed.metadata["pushed"] == 1.0
    production = days["after"][1]["production"]
    assert production.found
    assert production.record["model_uri"] == pushed.metadata["pushed_destination"]
    assert production.record["run"] == "day-1"
    model = _artifact(backend, "day-1", "Trainer", "tfx.Model")
    assert production.record["source_model_uri"] == model.uri
    assert (
        production.record["metrics"]["map_at_r"] == record["candidate_model"]["metrics"]["map_at_r"]
    )
    version = production.record["version"]
    # the GalleryIndex task's custom artifact type crossed the backend; its index was pushed
    # in the same version with the Trainer's model re-saved with the lookup signature (the
    # same weights), and the record names it
    index = _artifact(backend, "day-1", "GalleryIndex", gallery_spec.GalleryIndex.TYPE_NAME)
    resaved = os.path.join(index.uri, gallery_spec.SERVING_MODEL_DIR, "saved_model.pb")
    with open(resaved, "rb") as a:
        with open(os.path.join(serving, version, "saved_model.pb"), "rb") as b:
            assert a.read() == b.read()
    assert_same_weights(os.path.join(model.uri, "Format-Serving"), os.path.join(serving, version))
    gallery = production.record["gallery"]
    assert gallery["rows"] > 0 and gallery["uri"].startswith(production.record["model_uri"])
    for name in gallery_spec.PUSHED_FILES:
        assert os.path.exists(os.path.join(serving, version, gallery_spec.PUSHED_SUBDIR, name))
    # through the backend too, the GalleryIndex task read the eval split's embeddings and its
    # queries' neighbours from the RetrievalEvaluator task's evaluation
    evaluation = _artifact(backend, "day-1", "RetrievalEvaluator", "tfx.ModelEvaluation")
    info = _json(index, gallery_spec.INFO_FILE)
    assert info["eval_split_read_from"] == info["nearest_from"] == evaluation.uri


def test_day_2_is_judged_against_and_warm_started_from_production(days):
    backend = days["backend"]
    day1 = days["after"][1]["production"].record
    production = _artifact(backend, "day-2", "ProductionModel", "tfx.Model")
    assert production.metadata["production_version"] == day1["version"]
    record = _json(
        _artifact(backend, "day-2", "RetrievalEvaluator", "tfx.ModelEvaluation"), "evaluation.json"
    )
    assert record["baseline_model"]["uri"] == production.uri
    assert record["baseline_model"]["production_version"] == day1["version"]
    training = _json(
        _artifact(backend, "day-2", "Trainer", "tfx.ModelRun"), "training_summary.json"
    )
    assert training["warm_started_from"].startswith(production.uri)
    assert record["blessed"] is True, record["reasons"]
    after = days["after"][2]["production"].record
    assert after["version"] != day1["version"] and after["previous_version"] == day1["version"]
    assert after["source_model_uri"] == _artifact(backend, "day-2", "Trainer", "tfx.Model").uri
    assert days["after"][2]["serving"] != days["after"][1]["serving"]


def test_day_3_drift_stops_before_transform_and_changes_nothing(days):
    states = _states(days, 3)
    assert states["DataValidator"] == "COMPLETE"
    assert states["Transform"] == "SKIPPED"
    for task in DOWNSTREAM[1:]:
        assert states[task] in ("SKIPPED", "OMITTED"), (task, states)
    anomalies = _artifact(days["backend"], "day-3", "DataValidator", "tfx.ExampleAnomalies")
    assert anomalies.metadata["blessed"] == 0.0
    assert "pixel_1_3" in anomalies.metadata["anomalies_found"]
    assert days["after"][3]["serving"] == days["after"][2]["serving"]


def test_day_4_a_worse_model_is_not_pushed_and_production_stays(days):
    backend = days["backend"]
    states = _states(days, 4)
    assert states["Pusher"] == "COMPLETE"
    stats = _json(_artifact(backend, "day-4", "PairGen", "tfx.Examples"), "pair_gen_stats.json")
    assert stats["mode"] == "pairs"  # PairGen followed the training parameter's loss
    record = _json(
        _artifact(backend, "day-4", "RetrievalEvaluator", "tfx.ModelEvaluation"), "evaluation.json"
    )
    assert record["blessed"] is False
    assert any("worse than the baseline" in r for r in record["reasons"]), record["reasons"]
    assert (
        record["baseline_model"]["production_version"]
        == days["after"][2]["production"].record["version"]
    )
    assert _artifact(backend, "day-4", "Pusher", "tfx.PushedModel").metadata["pushed"] == 0.0
    assert days["after"][4]["serving"] == days["after"][2]["serving"]
    assert days["after"][4]["production"].record == days["after"][2]["production"].record
    verdicts = ledger.rejected(str(days["serving"].parent / "span_verdicts"))
    assert set(verdicts) == {3}


def test_the_same_run_again_recomputes_nothing_it_has(days):
    states = _states(days, AGAIN)
    ran = {name for name, state in states.items() if state == "COMPLETE"}
    # the plan always runs; the Pusher takes the run's name for the record
    assert ran == {run_plan.TASK, "Pusher"}, states
    assert all(state == "CACHED" for name, state in states.items() if name not in ran), states
    for task in ("FileBasedExampleGen", "Transform", "Trainer", "RetrievalEvaluator"):
        assert states[task] == "CACHED" and days["records"][AGAIN][task].detail == "from run day-4"
    pushed = _artifact(days["backend"], f"day-{AGAIN}", "Pusher", "tfx.PushedModel")
    assert pushed.metadata["pushed"] == 0.0
    assert days["after"][AGAIN] == days["after"][4]
