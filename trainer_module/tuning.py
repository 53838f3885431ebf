"""Hyperparameter tuning for TFX's ``Tuner`` component: KerasTuner on validation MAP@R.

``tuner_fn`` (the ``Tuner``'s module function) returns a KerasTuner random search whose
objective is the best validation MAP@R over a trial's epochs (``val_map_at_r``, the Trainer's
own selection criterion, ``selection.py``, on the same ``valid`` split); the test split is
never read. Each trial trains the candidate's model from scratch with the trial's values,
for the candidate's epochs, on PairGen's output, exactly as ``run_fn`` would, and keeps its
best epoch; a trial whose loss or weights become non-finite scores ``DIVERGED`` (-1, below
any MAP@R). The ``Tuner`` writes the best trial's values, and ``run_fn`` applies them
(``apply``) when the Trainer is given them.

The search space is ``tuning_space.search_space``'s (log-uniform ranges of the learning rate
and of the loss's margin or temperature, whatever the candidate did not set itself).

The search runs through our own ``run_trial``, not KerasTuner's ``fit`` wrapper: KerasTuner
1.4 takes its Keras from ``import keras`` (Keras 3 here), while TFX 1.16 trains with
``tf_keras``; its History and checkpoint callbacks do not work on a tf_keras model. So a trial
returns its objective value itself (KerasTuner's documented ``run_trial`` override), and
nothing of Keras 3 touches the model. Bounds: trials run one after another
(``max_trials``), each costing one training of ``epochs``; the validation rows are read once.
"""

from __future__ import annotations

import json
import math
from typing import Any

import keras_tuner as kt
import numpy as np
import tensorflow as tf
from absl import logging
from tfx.components.trainer import fn_args_utils
from tfx.components.tuner.component import TunerFnResult

from tfx_metric_learning.trainer_module import distribution, guards, selection
from tfx_metric_learning.trainer_module import model as model_lib
from tfx_metric_learning.trainer_module.job import TrainingJob
from tfx_metric_learning.trainer_module.settings import TrainingSettings
from tfx_metric_learning.trainer_module.tuning_space import DIVERGED, SPACE_KEY, TRIALS_KEY, apply


def hyperparameters(space: dict[str, list[float]]) -> kt.HyperParameters:
    """KerasTuner's search space for ``space`` (each log-uniform)."""
    hp = kt.HyperParameters()
    for name, (low, high) in sorted(space.items()):
        hp.Float(name, min_value=float(low), max_value=float(high), sampling="log")
    return hp


class ValidationSearch(kt.Tuner):
    """KerasTuner's search whose trials are ``trial_fn(values) -> validation MAP@R``."""

    def __init__(self, oracle, trial_fn, **kwargs):
        super().__init__(oracle=oracle, **kwargs)
        self._trial_fn = trial_fn

    def search_space_summary(self, extended=False):
        """Logged, not printed (TFX's Tuner executor calls it; a run's terminal stays quiet)."""
        logging.info("search space: %s", self.oracle.get_space().get_config())

    def results_summary(self, num_trials=10):
        """The best trials' values and scores, logged, not printed."""
        for trial in self.oracle.get_best_trials(num_trials):
            logging.info(
                "trial %s: %s -> %s", trial.trial_id, trial.hyperparameters.values, trial.score
            )

    def run_trial(self, trial, *args, **kwargs):
        """One trial: its objective value, computed by ``trial_fn``."""
        value = self._trial_fn(dict(trial.hyperparameters.values))
        logging.info(
            "trial %s %s: validation MAP@R %.4f",
            trial.trial_id,
            trial.hyperparameters.values,
            value,
        )
        return {selection.LOG_KEY: value}


def train_and_score(
    training: TrainingSettings,
    train_ds: tf.data.Dataset,
    steps_per_epoch: int,
    epochs: int,
    validation: tuple[np.ndarray, np.ndarray],
    feature_dim: int,
    num_classes: int,
    strategy: tf.distribute.Strategy,
    feature_names: list[str] | None = None,
) -> float:
    """Trains a fresh model with ``training``; its best validation MAP@R (epoch 0 included)."""
    tf.keras.utils.set_random_seed(training.seed)
    with strategy.scope():
        encoder, trainer = model_lib.build_trainer(
            training, feature_dim, num_classes, feature_names
        )
        best = selection.BestEpoch(encoder)
    guard = guards.StopOnNonFiniteWeights()
    history = trainer.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.TerminateOnNaN(),
            guard,
            selection.KeepBestEpoch(encoder, *validation, best),
        ],
    )
    losses = history.history.get("loss", [])
    if guard.bad or not all(math.isfinite(v) for v in losses):
        return DIVERGED
    return float(best.value.numpy())


def tuner_fn(fn_args: fn_args_utils.FnArgs) -> TunerFnResult:
    """The ``Tuner``'s function: a random search of ``tuning_trials`` trials.

    ``fn_args.custom_config``: every training setting, plus ``tuning_trials`` (>= 1) and
    ``tuning_space`` (``search_space``'s output). ``fn_args.eval_files`` must be the ``valid``
    split (the pipeline's ``eval_args``).
    """
    config = dict(fn_args.custom_config)
    trials = int(config.pop(TRIALS_KEY))
    space = config.pop(SPACE_KEY)
    training = TrainingSettings.from_dict(config, complete=True, source="the Tuner's custom_config")
    if trials < 1 or not space:
        raise ValueError(f"tuning needs at least one trial and a space, got {trials}, {space}")
    strategy = distribution.make_strategy()
    job = TrainingJob.prepare(
        fn_args,
        training,
        fn_args.transform_graph_path,
        replicas=strategy.num_replicas_in_sync,
        need_validation=True,
    )
    spec = training.loss_spec

    def trial(values: dict[str, Any]) -> float:
        return train_and_score(
            apply(training, values),
            job.train_ds,
            job.steps_per_epoch,
            job.epochs,
            job.validation,
            job.feature_dim,
            job.num_classes,
            strategy,
            job.feature_names,
        )

    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective(selection.LOG_KEY, direction="max"),
        max_trials=trials,
        hyperparameters=hyperparameters(space),
        seed=training.seed,
    )
    search = ValidationSearch(
        oracle, trial, directory=fn_args.working_dir, project_name="tuning", overwrite=True
    )
    logging.info("tuning %s: %d trials over %s", spec.name, trials, json.dumps(space))
    # verbose 0: KerasTuner prints each trial's table otherwise; the log has every trial
    return TunerFnResult(tuner=search, fit_kwargs={"verbose": 0})
