"""The leaderboard's ranking: chosen on validation data only, reported on test data."""

import pytest

from tfx_metric_learning.components.leaderboard import ranking, statistics

METRICS = ["map_at_r", "precision_at_1"]


def _branch(candidate, seed, validation, test, seconds=10.0):
    return {
        "candidate": candidate,
        "seed": seed,
        "validation": validation,
        "metrics": {"map_at_r": test, "precision_at_1": test + 0.1},
        "seconds": seconds,
        "kept_epoch": 3,
        "epochs": 5,
    }


def test_the_winner_is_the_best_mean_validation_score_not_the_best_test_score():
    branches = [
        # "a" is better on test data, "b" on validation data: b must win
        _branch("a", 0, 0.60, 0.90),
        _branch("a", 1, 0.62, 0.92),
        _branch("b", 0, 0.70, 0.80),
        _branch("b", 1, 0.66, 0.81),
    ]
    board = ranking.build(branches, {}, METRICS)
    assert [r["candidate"] for r in board["candidates"]] == ["b", "a"]
    assert board["winner"] == {"candidate": "b", "seed": 0, "validation": 0.70}
    b, a = board["candidates"]
    assert b["rank"] == 1 and b["vs_winner"] is None
    assert b["validation"]["mean"] == pytest.approx(0.68)
    assert b["test"]["map_at_r"]["mean"] == pytest.approx(0.805)
    mean, half = statistics.mean_interval([0.90, 0.92])
    assert a["test"]["map_at_r"] == {"mean": pytest.approx(mean), "ci95": pytest.approx(half)}
    assert a["vs_winner"] == statistics.paired_test({0: 0.90, 1: 0.92}, {0: 0.80, 1: 0.81})
    assert a["per_seed"]["1"]["map_at_r"] == 0.92


def test_ties_go_to_the_earlier_candidate_and_the_lower_seed():
    branches = [_branch("x", 5, 0.5, 0.4), _branch("x", 4, 0.5, 0.3), _branch("y", 4, 0.5, 0.9)]
    board = ranking.build(branches, {}, METRICS)
    assert board["winner"]["candidate"] == "x" and board["winner"]["seed"] == 4
    assert board["candidates"][1]["vs_winner"] is None  # one common seed: no test


def test_lift_over_the_better_raw_baseline():
    raw = {
        "raw_features": {"map_at_r": 0.55, "precision_at_1": 0.9},
        "transformed_features": {"map_at_r": 0.51, "precision_at_1": 0.9},
    }
    board = ranking.build([_branch("a", 0, 0.7, 0.75)], raw, METRICS)
    assert board["best_raw_baseline"] == "raw_features"
    assert board["candidates"][0]["lift_over_raw"] == pytest.approx(0.20)


def test_bad_branches_are_refused_by_name():
    with pytest.raises(ValueError, match="'a' has two models for seed 0"):
        ranking.build([_branch("a", 0, 0.5, 0.5), _branch("a", 0, 0.6, 0.6)], {}, METRICS)
    broken = _branch("a", 0, 0.5, 0.5)
    del broken["metrics"]["precision_at_1"]
    with pytest.raises(ValueError, match=r"'a' seed 0: no test metric\(s\) \['precision_at_1'\]"):
        ranking.build([broken], {}, METRICS)
    with pytest.raises(ValueError, match="at least one"):
        ranking.build([], {}, METRICS)
