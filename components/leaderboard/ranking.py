"""The leaderboard of a comparison: candidates ranked by validation MAP@R, reported on test data.

Protocol (Musgrave et al., "A Metric Learning Reality Check", 2020): every candidate is trained
once per seed; each training keeps its epoch with the best validation MAP@R (the ``valid``
split, never the test split; ``trainer_module/selection.py``), and that model is scored on the
test (``eval``) split by the RetrievalEvaluator. Here:

- the **winner** is the candidate with the highest mean validation MAP@R over its seeds (ties:
  the earlier candidate in the given order); the model shipped is the winner's seed with the
  highest validation MAP@R (ties: the lower seed). Test metrics play no part in the choice.
- each candidate's test metrics are reported as mean and 95% t interval over seeds
  (``statistics.mean_interval``), and its test MAP@R is compared with the winner's by a
  paired t-test over the seeds (``statistics.paired_test``);
- the raw-feature baselines (the inputs themselves under cosine similarity, which every
  evaluation scores on the same split) are reported beside them; each candidate's lift over
  the better one is its mean test MAP@R minus that baseline's (within ``ROUNDING`` of 0: 0,
  as the evaluator's lift).

Pure: plain dicts in, a JSON-ready dict out.
"""

from __future__ import annotations

from tfx_metric_learning.components.leaderboard import statistics
from tfx_metric_learning.components.retrieval_evaluator.settings import ROUNDING

# what selects (on the validation split) and what the paired tests compare (on the test split)
SELECTION_METRIC = "map_at_r"
TEST_METRIC = "map_at_r"


def build(branches: list[dict], raw_baselines: dict[str, dict], metrics: list[str]) -> dict:
    """The leaderboard of ``branches``.

    ``branches``: one dict per trained model, ``{"candidate", "seed", "validation" (its
    validation MAP@R), "metrics" (test metrics by name), "seconds" (training time),
    "kept_epoch", "epochs", "tuned" (optional: the values its Tuner chose)}``, in candidate
    order. ``raw_baselines``: name -> test metrics.
    ``metrics``: the test metrics to report (each must be in every branch's ``metrics``).
    """
    if not branches:
        raise ValueError("a leaderboard needs at least one trained model")
    order: list[str] = []
    by_candidate: dict[str, dict[int, dict]] = {}
    for branch in branches:
        name, seed = branch["candidate"], int(branch["seed"])
        if name not in by_candidate:
            order.append(name)
            by_candidate[name] = {}
        if seed in by_candidate[name]:
            raise ValueError(f"candidate {name!r} has two models for seed {seed}")
        missing = [m for m in metrics if m not in branch["metrics"]]
        if missing:
            raise ValueError(f"{name!r} seed {seed}: no test metric(s) {missing}")
        by_candidate[name][seed] = branch
    rows = [_row(name, by_candidate[name], metrics) for name in order]
    best_first = sorted(range(len(rows)), key=lambda i: (-rows[i]["validation"]["mean"], i))
    rows = [rows[i] for i in best_first]
    winner = rows[0]
    best_raw = _best_raw(raw_baselines)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        row["vs_winner"] = (
            None
            if row is winner
            else statistics.paired_test(_by_seed(row, TEST_METRIC), _by_seed(winner, TEST_METRIC))
        )
        row["lift_over_raw"] = (
            None
            if best_raw is None
            else _lift(row["test"][TEST_METRIC]["mean"], raw_baselines[best_raw][TEST_METRIC])
        )
    seeds = by_candidate[winner["candidate"]]
    shipped = min(seeds, key=lambda s: (-seeds[s]["validation"], s))
    return {
        "selection": {"split": "valid", "metric": SELECTION_METRIC},
        "test_metric": TEST_METRIC,
        "metrics": list(metrics),
        "confidence": statistics.CONFIDENCE,
        "alpha": statistics.ALPHA,
        "candidates": rows,
        "raw_baselines": raw_baselines,
        "best_raw_baseline": best_raw,
        "winner": {
            "candidate": winner["candidate"],
            "seed": shipped,
            "validation": seeds[shipped]["validation"],
        },
    }


def _row(name: str, seeds: dict[int, dict], metrics: list[str]) -> dict:
    ordered = sorted(seeds)

    def interval(values: list[float]) -> dict:
        mean, half = statistics.mean_interval(values)
        return {"mean": mean, "ci95": half}

    return {
        "candidate": name,
        "seeds": ordered,
        # the values its Tuner chose (the same for every seed), when it was tuned
        "tuned": seeds[ordered[0]].get("tuned"),
        "validation": interval([seeds[s]["validation"] for s in ordered]),
        "test": {m: interval([seeds[s]["metrics"][m] for s in ordered]) for m in metrics},
        "seconds": interval([seeds[s]["seconds"] for s in ordered]),
        "per_seed": {
            str(s): {
                "validation": seeds[s]["validation"],
                "kept_epoch": seeds[s].get("kept_epoch"),
                "epochs": seeds[s].get("epochs"),
                "seconds": seeds[s]["seconds"],
                **{m: seeds[s]["metrics"][m] for m in metrics},
            }
            for s in ordered
        },
    }


def _lift(value: float, raw: float) -> float:
    """``value - raw``, with rounding-sized differences (``ROUNDING``) as 0."""
    lift = value - raw
    return 0.0 if abs(lift) < ROUNDING else lift


def _by_seed(row: dict, metric: str) -> dict[int, float]:
    return {int(s): v[metric] for s, v in row["per_seed"].items()}


def _best_raw(raw_baselines: dict[str, dict]) -> str | None:
    if not raw_baselines:
        return None
    return max(sorted(raw_baselines), key=lambda n: raw_baselines[n][TEST_METRIC])
