"""A compiled comparison executed task by task through TFX's KFP v2 container entrypoint.

``compile --compare --tuning-trials 2 --max-parallel-branches 1`` with two candidates (one
seed) runs on ``kfp_local.LocalBackend`` in each of its modes: open-source Kubeflow (integer
artifact ids, untyped upstream artifacts, its cache key) and Vertex AI (artifacts named by
resource name): every task is its compiled command in a process of its own (forked from a
server that has imported TFX, ``pods.py``), and the second branch waits for the first. The
second branch's evaluator and the final one reuse the first branch's input baselines (the
evaluator's optional ``baselines`` input). Each candidate's Tuner (TFX's, with our KerasTuner
search) must write its best trial, and its Trainer train with those values; the Leaderboard,
whose inputs are one channel per branch, must gather both branches from the ExecutorInput the
backend hands it, output the winner's model, and that model must be blessed by the final
RetrievalEvaluator and pushed.
"""

import json
import os

import pytest

from tests.kubeflow.kfp_local import MODES

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=MODES)
def run(stand_in_runs, request):
    return stand_in_runs[f"compare-{request.param}"].result()


def _artifact(backend, task, title):
    (found,) = [a for a in backend.store if a.task == task and a.schema_title == title]
    return found


def test_every_task_ran_and_the_leaderboard_gathered_both_branches(run):
    states = {r.task: r.state for r in run["records"]}
    assert all(s == "COMPLETE" for s in states.values()), states
    assert {"Trainer_triplet_semihard_s42", "Trainer_supcon_s42"} <= set(states)
    backend = run["backend"]
    board_artifact = _artifact(backend, "Leaderboard", "tfx.ModelEvaluation")
    with open(os.path.join(board_artifact.uri, "leaderboard.json")) as f:
        board = json.load(f)
    assert {r["candidate"] for r in board["candidates"]} == {"triplet_semihard", "supcon"}
    assert os.path.exists(board["report"])
    winner = board["winner"]["candidate"]
    trained = _artifact(backend, f"Trainer_{winner}_s42", "tfx.Model")
    shipped = _artifact(backend, "Leaderboard", "tfx.Model")
    assert board["winner"]["model_uri"] == trained.uri
    assert shipped.metadata["candidate"] == winner
    assert sorted(os.listdir(shipped.uri)) == sorted(os.listdir(trained.uri))


def test_the_winner_is_blessed_against_production_and_pushed(run):
    backend = run["backend"]
    blessing = _artifact(backend, "RetrievalEvaluator", "tfx.ModelBlessing")
    shipped = _artifact(backend, "Leaderboard", "tfx.Model")
    assert blessing.metadata["blessed"] == 1.0
    # the blessing names the model as the backend does: the open-source backend by its ML
    # Metadata id, Vertex AI by its resource name
    expected = str(shipped.id) if run["mode"] == "kfp" else shipped.name
    assert blessing.metadata["current_model_id"] == expected
    pushed = _artifact(backend, "Pusher", "tfx.PushedModel")
    assert pushed.metadata["pushed"] == 1.0
    assert os.path.exists(os.path.join(pushed.metadata["pushed_destination"], "saved_model.pb"))


def test_each_candidate_is_tuned_on_validation_data_and_trained_with_its_best_trial(run):
    backend = run["backend"]
    for candidate, param in (("triplet_semihard", "loss.margin"), ("supcon", "loss.temperature")):
        best = _artifact(backend, f"Tuner_{candidate}_s42", "tfx.HyperParameters")
        with open(os.path.join(best.uri, "best_hyperparameters.txt")) as f:
            values = json.load(f)["values"]
        assert set(values) == {"learning_rate", param}
        summary = _artifact(backend, f"Trainer_{candidate}_s42", "tfx.ModelRun")
        with open(os.path.join(summary.uri, "training_summary.json")) as f:
            training = json.load(f)
        assert training["tuned"] == values
        assert training["learning_rate"] == values["learning_rate"]
        assert training["loss_params"][param.split(".")[1]] == values[param]


def test_at_most_one_branch_runs_at_once(run):
    tasks = run["spec"]["root"]["dag"]["tasks"]
    first, second = "triplet_semihard_s42", "supcon_s42"
    assert f"RetrievalEvaluator_{first}" in tasks[f"Tuner_{second}"]["dependentTasks"]


def test_every_evaluation_reads_the_input_baselines_scored_once(run):
    backend = run["backend"]
    measured = _artifact(backend, "InputBaselines", "tfx.ModelEvaluation")
    with open(os.path.join(measured.uri, "evaluation.json")) as f:
        scored = json.load(f)["baselines"]
    assert set(scored["classic"]) == {"pca_whitened", "lda"}
    tasks = ("RetrievalEvaluator_triplet_semihard_s42", "RetrievalEvaluator_supcon_s42")
    for task in (*tasks, "RetrievalEvaluator"):
        found = _artifact(backend, task, "tfx.ModelEvaluation")
        with open(os.path.join(found.uri, "evaluation.json")) as f:
            record = json.load(f)
        assert record["baselines"]["reused_from"] == measured.uri, task
        assert record["baselines"]["raw"] == scored["raw"]
        assert "score_raw_features" not in record["seconds"]
