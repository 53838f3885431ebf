"""The Leaderboard's executor: gathers the branches, ranks them, outputs the winner.

It reads every branch's training summary and evaluation, ranks them (``ranking.build``),
writes ``leaderboard.json`` and ``report.html``, and copies the winning model into its
``model`` output for the usual blessing and push.

Checks first, then plain functions: every branch must have been selected on validation data
(a training without a validation split has no fair score to rank by) and evaluated on the
same split with the same metrics; anything else is refused with the branch named.
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from tfx_metric_learning.components.leaderboard import ranking, report, spec
from tfx_metric_learning.components.retrieval_evaluator.spec import EVALUATION_FILE
from tfx_metric_learning.trainer_module.spec import SUMMARY_FILE


def input_key(kind: str, index: int) -> str:
    """The input channel of branch ``index`` for ``kind`` (model, model_run, evaluation)."""
    return f"{kind}_{index}"


def _read_json(uri: str, name: str) -> dict[str, Any]:
    path = os.path.join(uri, name)
    if not fileio.exists(path):
        raise ValueError(f"{path} does not exist")
    with fileio.open(path, "rb") as f:
        return json.loads(f.read())


def branch_records(
    branches: list[dict], summaries: list[dict], evaluations: list[dict]
) -> tuple[list[dict], dict[str, dict]]:
    """``(records for ranking.build, raw baselines)`` from each branch's files, checked."""
    if not (len(branches) == len(summaries) == len(evaluations)):
        raise ValueError("one training summary and one evaluation per branch are needed")
    records, raw, split = [], None, None
    for branch, summary, evaluation in zip(branches, summaries, evaluations, strict=True):
        name = f"{branch['candidate']!r} seed {branch['seed']}"
        selection = summary.get("selection") or {}
        if not selection.get("split"):
            raise ValueError(
                f"{name} was not selected on validation data (no validation split): a "
                f"comparison ranks on validation MAP@R; give --validation-fraction > 0"
            )
        if selection.get("metric") != ranking.SELECTION_METRIC:
            raise ValueError(
                f"{name} was selected on {selection.get('metric')!r}, not "
                f"{ranking.SELECTION_METRIC!r}"
            )
        if split is None:
            split, raw = evaluation["split"], evaluation.get("raw_baselines") or {}
        elif evaluation["split"] != split:
            raise ValueError(
                f"{name} was evaluated on {evaluation['split']!r}, others on {split!r}"
            )
        records.append(
            {
                "candidate": branch["candidate"],
                "seed": branch["seed"],
                "validation": float(selection["value"]),
                "metrics": evaluation["candidate_model"]["metrics"],
                "seconds": float(summary["seconds"]),
                "kept_epoch": selection.get("kept_epoch"),
                "epochs": summary.get("epochs"),
                "tuned": summary.get("tuned"),
            }
        )
    return records, raw or {}


class Executor(base_executor.BaseExecutor):
    """Ranks the branches and outputs the leaderboard and a copy of the winning model."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        branches = json.loads(exec_properties[spec.BRANCHES_KEY])
        metrics = json.loads(exec_properties[spec.METRICS_KEY])
        summaries, evaluations, models = [], [], []
        for i in range(len(branches)):
            run_uri = artifact_utils.get_single_uri(input_dict[input_key(spec.MODEL_RUN_KEY, i)])
            eval_uri = artifact_utils.get_single_uri(input_dict[input_key(spec.EVALUATION_KEY, i)])
            summaries.append(_read_json(run_uri, SUMMARY_FILE))
            evaluations.append(_read_json(eval_uri, EVALUATION_FILE))
            models.append(artifact_utils.get_single_uri(input_dict[input_key(spec.MODEL_KEY, i)]))
        records, raw = branch_records(branches, summaries, evaluations)
        raw = {name: {m: values[m] for m in metrics} for name, values in raw.items()}
        board = ranking.build(records, raw, metrics)
        # the classic baselines (PCA whitening, LDA) fit by the first branch's evaluator: the
        # same train split and eval split for every branch
        first = evaluations[0] if evaluations else {}
        board["classic_baselines"] = {
            name: {m: entry["metrics"][m] for m in metrics}
            for name, entry in (first.get("classic_baselines") or {}).items()
        }
        board["split"] = evaluations[0]["split"]

        winner = board["winner"]
        index = next(
            i
            for i, b in enumerate(branches)
            if b["candidate"] == winner["candidate"] and int(b["seed"]) == winner["seed"]
        )
        model = artifact_utils.get_single_instance(output_dict[spec.MODEL_KEY])
        io_utils.copy_dir(models[index], model.uri)
        model.set_string_custom_property(spec.CANDIDATE_PROPERTY, winner["candidate"])
        model.set_int_custom_property(spec.SEED_PROPERTY, int(winner["seed"]))
        winner["model_uri"] = models[index]
        logging.info("leaderboard winner: %s", winner)

        out = artifact_utils.get_single_uri(output_dict[spec.LEADERBOARD_KEY])
        path, errors = report.write_report(out, board)
        board["report"], board["report_errors"] = path, errors
        with fileio.open(os.path.join(out, spec.LEADERBOARD_FILE), "wb") as f:
            f.write(json.dumps(board, indent=2).encode("utf-8"))
