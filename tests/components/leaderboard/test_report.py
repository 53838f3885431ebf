"""The leaderboard's table and verdict: what the CLI prints and docs/compare.md shows."""

from tfx_metric_learning.components.leaderboard import ranking, report

METRICS = ["map_at_r", "r_precision", "precision_at_1", "recall_at_1", "roc_auc"]


def _board(test_a, test_b, tuned=None):
    branches = [
        {
            "candidate": name,
            "seed": seed,
            "validation": v,
            "seconds": 3.0,
            "kept_epoch": k,
            "epochs": 5,
            "tuned": tuned if name == "a" else None,
            "metrics": {m: t for m in METRICS},
        }
        for name, v, t in (("a", 0.9, test_a), ("b", 0.8, test_b))
        for seed, k in ((0, 2), (1, 4))
    ]
    raw = {"raw_features": {m: 0.6 for m in METRICS}}
    return ranking.build(branches, raw, METRICS)


def test_the_table_has_a_row_per_candidate_then_the_raw_baselines():
    table = report.markdown_table(_board(0.7, 0.5)).splitlines()
    assert len(table) == 2 + 2 + 1
    head = [c.strip() for c in table[0].strip("|").split("|")]
    assert head[:4] == ["rank", "candidate", "valid MAP@R", "test MAP@R"]
    assert "tuned" not in head
    a = dict(zip(head, [c.strip() for c in table[2].strip("|").split("|")], strict=True))
    assert a["candidate"] == "a" and a["lift over raw"] == "+0.1000"
    assert a["kept epochs"] == "2,4" and a["differs from winner (paired)"] == "winner"
    assert table[4].startswith("| - | raw_features (inputs, cosine) | - | 0.6000")


def test_the_verdict_says_plainly_when_the_winner_is_worse_than_its_inputs():
    assert report.raw_verdict(_board(0.7, 0.5)).startswith(
        "The winner separates better than its inputs: test map_at_r 0.7000 against 0.6000"
    )
    worse = report.raw_verdict(_board(0.5, 0.65))
    assert worse.startswith("The winner separates WORSE than its own inputs")
    assert worse.endswith("(lift -0.1000); better than the inputs: b.")
    assert report.raw_verdict(_board(0.5, 0.4)).endswith("; no candidate does.")
    # lifts within rounding of 0 are 0: the inputs matched, not beaten
    matched = report.raw_verdict(_board(0.5, 0.6 + 1e-12))
    assert matched.startswith("The winner separates WORSE than its own inputs")
    assert matched.endswith("; no candidate does (as good: b).")
    assert report.raw_verdict(_board(0.6 - 1e-12, 0.5)).startswith(
        "The winner separates only as well as its own inputs"
    )


def test_tuned_values_get_a_column():
    table = report.markdown_table(_board(0.7, 0.5, {"learning_rate": 0.00312, "loss.margin": 0.5}))
    assert table.splitlines()[0].rstrip(" |").endswith("tuned")
    assert "learning_rate=0.00312 margin=0.5 |" in table.splitlines()[2]
