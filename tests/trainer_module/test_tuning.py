"""The Tuner's function on real PairGen output: trials scored on validation MAP@R."""

import json

import pytest
import tensorflow_transform as tft

from tests.trainer_module.run_helpers import fn_args_for, prepare_run_inputs
from tfx_metric_learning.trainer_module import (
    datasets,
    distribution,
    preprocessing,
    run,
    selection,
    tuning,
    tuning_space,
)
from tfx_metric_learning.trainer_module import spec as trainer_spec
from tfx_metric_learning.trainer_module.settings import TrainingSettings

SMALL = {"epochs": 1, "batch_size": 64, "train_steps": 10, "embedding_dim": 16}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_run_inputs(tmp_path_factory.mktemp("tuning"))


def _tuner_args(prepared, tmp_path, training, trials, space):
    config = training.resolved().to_dict()
    config |= {tuning_space.TRIALS_KEY: trials, tuning_space.SPACE_KEY: space}
    fn_args = fn_args_for(prepared, "none", tmp_path, config)
    fn_args.working_dir = str(tmp_path / "work")
    return fn_args


def test_the_search_keeps_the_trial_with_the_best_validation_map_at_r(prepared, tmp_path):
    training = TrainingSettings(loss="triplet_semihard", hidden_units=[32], **SMALL)
    space = tuning_space.search_space(training.resolved(), set())
    result = tuning.tuner_fn(_tuner_args(prepared, tmp_path, training, 3, space))
    result.tuner.search(**result.fit_kwargs)
    trials = result.tuner.oracle.get_best_trials(3)
    assert len(trials) == 3
    scores = [t.score for t in trials]
    assert all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    best = result.tuner.get_best_hyperparameters()[0].values
    assert best == trials[0].hyperparameters.values
    for name, (low, high) in space.items():
        assert low <= best[name] <= high


def test_a_diverging_trial_scores_below_any_map_at_r(prepared, tmp_path):
    fn_args = fn_args_for(prepared, "none", tmp_path, {})
    training = TrainingSettings(
        loss="triplet_semihard", learning_rate=1e30, hidden_units=[16], **SMALL
    ).resolved()
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    dataset = datasets.make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        datasets.load_schema(fn_args.schema_path),
        training.loss_spec,
        training.batch_size,
        0,
    )
    score = tuning.train_and_score(
        training,
        dataset,
        10,
        1,
        selection.read_rows(fn_args.eval_files, 0),
        datasets.feature_dim(tft_output),
        tft_output.vocabulary_size_by_name(preprocessing.LABEL_VOCAB),
        distribution.make_strategy(),
    )
    assert score == tuning_space.DIVERGED


def test_run_fn_trains_with_the_tuned_values(prepared, tmp_path):
    training = TrainingSettings(loss="supcon", hidden_units=[32], **SMALL)
    fn_args = fn_args_for(prepared, "none", tmp_path, training.resolved().to_dict())
    values = {"learning_rate": 0.0042, "loss.temperature": 0.33}
    fn_args.hyperparameters = {"space": [], "values": values}
    run.run_fn(fn_args)
    summary = json.load(open(tmp_path / "run" / trainer_spec.SUMMARY_FILE))
    assert summary["tuned"] == values
    assert summary["learning_rate"] == 0.0042 and summary["loss_params"]["temperature"] == 0.33
