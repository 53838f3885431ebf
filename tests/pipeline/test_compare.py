"""``metric-learning compare`` end to end: one pipeline, the leaderboard, the cache, the push.

A module-scoped sequence of comparisons through the CLI in fresh processes, on a digits
subset, sharing one pipeline root:

1. two candidates x two seeds on seen_classes: every node runs, the Leaderboard ranks the
   candidates on validation MAP@R and the winner is blessed and pushed;
2. the same plus a third candidate: only the new candidate's branch (and the Leaderboard,
   the final evaluation and the push after it) runs; every other node is taken from the cache;
3. both protocols, one candidate, one seed: the first protocol is deployed, the second one
   only reports.
"""

import json
import os

import pytest

from tests.pipeline.test_e2e import cli
from tfx_metric_learning.components.leaderboard.spec import LEADERBOARD_FILE
from tfx_metric_learning.pipeline import data

pytestmark = pytest.mark.e2e

SHARED = ("FileBasedExampleGen", "StatisticsGen", "SchemaGen", "DataValidator", "Transform")


@pytest.fixture(scope="module")
def comparisons(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    csv_path = str(base / "digits.csv")
    data.write_if_changed(csv_path, data.digits_csv_text(limit=600))
    root = str(base / "root")
    common = ["compare", "--data", csv_path, "--pipeline-root", root, "--epochs", "2"]
    common += ["--batch-size", "64"]
    out = {"root": root}
    for name, extra in (
        ("first", ["--losses", "triplet_semihard,contrastive", "--seeds", "2"]),
        (
            "added",
            [
                "--losses",
                "triplet_semihard,contrastive",
                "--seeds",
                "2",
                "--candidate",
                "supcon temperature=0.2",
            ],
        ),
        (
            "protocols",
            ["--losses", "supcon", "--seeds", "1", "--protocol", "unseen_classes,seen_classes"],
        ),
    ):
        summary_path = str(base / f"{name}.json")
        markdown = str(base / f"{name}.md")
        proc = cli(*common, *extra, "--summary-json", summary_path, "--markdown", markdown)
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
        with open(summary_path) as f:
            out[name] = json.load(f)
        out[f"{name}_stdout"] = proc.stdout
        out[f"{name}_markdown"] = open(markdown).read()
    return out


def test_one_pipeline_with_a_branch_per_candidate_and_seed(comparisons):
    result = comparisons["first"]["protocols"]["seen_classes"]
    states = result["run"]["components"]
    for branch in (
        "triplet_semihard_s42",
        "triplet_semihard_s43",
        "contrastive_s42",
        "contrastive_s43",
    ):
        assert states[f"Trainer_{branch}"] == "COMPLETE"
        assert states[f"RetrievalEvaluator_{branch}"] == "COMPLETE"
    # triplet_semihard mines its batches, contrastive consumes pairs: two PairGens per seed
    assert sum(node.startswith("PairGen_") for node in states) == 4
    for node in (*SHARED, "Leaderboard", "RetrievalEvaluator", "Pusher"):
        assert states[node] == "COMPLETE", node
    assert "Trainer" not in states


def test_the_leaderboard_ranks_on_validation_and_ships_the_winner(comparisons):
    summary = comparisons["first"]
    result = summary["protocols"]["seen_classes"]
    board = result["leaderboard"]
    with open(os.path.join(result["leaderboard_uri"], LEADERBOARD_FILE)) as f:
        assert json.load(f) == board
    rows = board["candidates"]
    assert [r["seeds"] for r in rows] == [[42, 43], [42, 43]]
    assert rows[0]["validation"]["mean"] >= rows[1]["validation"]["mean"]
    winner = board["winner"]
    assert winner["candidate"] == rows[0]["candidate"]
    per_seed = rows[0]["per_seed"]
    assert winner["validation"] == max(v["validation"] for v in per_seed.values())
    # the validation scores are the Trainers' own kept-epoch scores, never the test split's
    assert all(0 < v["kept_epoch"] <= 2 or v["kept_epoch"] == 0 for v in per_seed.values())
    assert set(board["raw_baselines"]) == {"raw_features", "transformed_features"}
    assert os.path.exists(board["report"]) and board["report_errors"] == []
    run = result["run"]
    assert run["blessed"] is True and run["pushed_model"]
    assert f"Winner: {winner['candidate']} (seed {winner['seed']}" in comparisons["first_stdout"]
    assert "| rank | candidate | valid MAP@R | test MAP@R" in comparisons["first_stdout"]
    # the plan, said before the comparison starts: 2 x 2 branches, and every component counted
    plan = "Plan: 2 candidate(s) x 2 seed(s) x 1 protocol(s) = 4 branches, "
    assert plan in comparisons["first_stdout"]
    components = int(comparisons["first_stdout"].split(plan)[1].split(" components")[0])
    assert components == len(run["components"])
    assert "raw_features (inputs, cosine)" in comparisons["first_markdown"]


def test_adding_a_candidate_runs_only_its_branch(comparisons):
    states = comparisons["added"]["protocols"]["seen_classes"]["run"]["components"]
    new = {n for n in states if "supcon" in n}
    assert new and all(states[n] == "COMPLETE" for n in new), new
    new_pair_gens = {n for n in states if n.startswith("PairGen_") and states[n] == "COMPLETE"}
    assert not new_pair_gens  # supcon mines batches: it shares triplet_semihard's PairGens
    old = {n for n in states if n.startswith(("Trainer_", "RetrievalEvaluator_", "PairGen_"))}
    assert {n: states[n] for n in old - new} == {n: "CACHED" for n in old - new}
    for node in SHARED:
        assert states[node] == "CACHED", node
    board = comparisons["added"]["protocols"]["seen_classes"]["leaderboard"]
    assert {r["candidate"] for r in board["candidates"]} == {
        "triplet_semihard",
        "contrastive",
        "supcon temperature=0.2",
    }


def test_the_first_protocol_is_deployed_and_the_others_report(comparisons):
    summary = comparisons["protocols"]
    assert summary["deploy_protocol"] == "unseen_classes"
    unseen, seen = summary["protocols"]["unseen_classes"], summary["protocols"]["seen_classes"]
    assert "Pusher" in unseen["run"]["components"]
    assert "run" not in seen
    for result in (unseen, seen):
        assert [r["candidate"] for r in result["leaderboard"]["candidates"]] == ["supcon"]
        assert result["leaderboard"]["candidates"][0]["test"]["map_at_r"]["ci95"] is None
    stdout = comparisons["protocols_stdout"]
    assert "Protocol unseen_classes" in stdout and "Protocol seen_classes" in stdout
    assert "(report only: the unseen_classes winner is the one deployed)" in stdout
    assert "#### unseen_classes" in comparisons["protocols_markdown"]
