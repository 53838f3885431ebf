"""The Leaderboard executor on real files: what it refuses, writes and copies."""

import json
import os

import pytest
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

from tfx_metric_learning.components.leaderboard import executor, spec
from tfx_metric_learning.components.retrieval_evaluator.spec import EVALUATION_FILE
from tfx_metric_learning.trainer_module.spec import SUMMARY_FILE

METRICS = ["map_at_r", "r_precision", "precision_at_1", "recall_at_1", "recall_at_5", "roc_auc"]


def _metrics(value):
    return {m: value for m in METRICS}


def _summary(validation, split="valid"):
    return {
        "seconds": 12.5,
        "epochs": 4,
        "selection": {"split": split, "metric": "map_at_r", "value": validation, "kept_epoch": 2}
        if split
        else {"split": None, "kept_epoch": 4},
    }


def _evaluation(value, split="eval"):
    return {
        "split": split,
        "candidate_model": {"metrics": _metrics(value)},
        "raw_baselines": {"raw_features": _metrics(0.5), "transformed_features": _metrics(0.4)},
    }


def _artifact(cls, uri, files):
    artifact = cls()
    artifact.uri = str(uri)
    fileio.makedirs(artifact.uri)
    for name, content in files.items():
        with fileio.open(os.path.join(artifact.uri, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
    return [artifact]


def _read(path):
    with fileio.open(str(path)) as f:
        return f.read()


@pytest.fixture(params=["local", "ram"])
def base(request, tmp_path):
    """A local folder, or an in-memory non-local filesystem standing in for a bucket."""
    if request.param == "local":
        return str(tmp_path)
    return f"ram://leaderboard-{id(request)}"


def test_ranks_the_branches_writes_the_leaderboard_and_copies_the_winning_model(base):
    branches = [
        {"candidate": "a", "seed": 0, "validation": 0.6, "test": 0.9},
        {"candidate": "a", "seed": 1, "validation": 0.7, "test": 0.8},
        {"candidate": "b", "seed": 0, "validation": 0.8, "test": 0.7},
        {"candidate": "b", "seed": 1, "validation": 0.9, "test": 0.6},
    ]
    inputs = {}
    for i, b in enumerate(branches):
        inputs[executor.input_key("model", i)] = _artifact(
            standard_artifacts.Model, f"{base}/model{i}", {"saved_model.pb": f"model {i}"}
        )
        inputs[executor.input_key("model_run", i)] = _artifact(
            standard_artifacts.ModelRun,
            f"{base}/run{i}",
            {SUMMARY_FILE: _summary(b["validation"])},
        )
        inputs[executor.input_key("evaluation", i)] = _artifact(
            standard_artifacts.ModelEvaluation,
            f"{base}/eval{i}",
            {EVALUATION_FILE: _evaluation(b["test"])},
        )
    board_out = _artifact(standard_artifacts.ModelEvaluation, f"{base}/board", {})
    model_out = _artifact(standard_artifacts.Model, f"{base}/winner", {})
    executor.Executor().Do(
        inputs,
        {"leaderboard": board_out, "model": model_out},
        {
            "branches": json.dumps(
                [{"candidate": b["candidate"], "seed": b["seed"]} for b in branches]
            ),
            "metrics": json.dumps(METRICS),
        },
    )
    board = json.loads(_read(f"{base}/board/{spec.LEADERBOARD_FILE}"))
    assert board["winner"]["candidate"] == "b" and board["winner"]["seed"] == 1
    assert board["split"] == "eval"
    assert sorted(board["raw_baselines"]) == ["raw_features", "transformed_features"]
    assert _read(f"{base}/winner/saved_model.pb") == "model 3"
    assert model_out[0].get_string_custom_property("candidate") == "b"
    assert model_out[0].get_int_custom_property("seed") == 1
    assert board["report"].startswith(f"{base}/board")  # written where the artifact is
    page = _read(board["report"])
    assert board["report_errors"] == []
    assert page.count("data:image/png;base64,") == 2 and "b wins" in page


def test_a_training_without_a_validation_split_is_refused_by_name():
    branches = [{"candidate": "a", "seed": 0}, {"candidate": "b", "seed": 3}]
    with pytest.raises(ValueError, match=r"'b' seed 3 was not selected on validation data"):
        executor.branch_records(
            branches, [_summary(0.5), _summary(0.5, split=None)], [_evaluation(0.5)] * 2
        )
    with pytest.raises(ValueError, match=r"'b' seed 3 was evaluated on 'valid', others on 'eval'"):
        executor.branch_records(
            branches, [_summary(0.5)] * 2, [_evaluation(0.5), _evaluation(0.5, split="valid")]
        )
