"""The Trainer's ``run_fn``: MirroredStrategy training of the configured loss, and export.

The entry point TFX's Trainer calls (``module_file``); it composes the modules beside it:
``job`` (settings, PairGen's build and the data, shared with ``tuning.tuner_fn``),
``distribution`` (the strategy), ``model`` (encoder and trainer), ``warm_start``,
``resume``, ``selection`` (the best validation epoch), ``guards`` (non-finite stops) and
``export`` (the SavedModel with the Transform graph and raw-feature signatures).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import tensorflow as tf
from absl import logging
from tf_keras.src.distribute import distributed_file_utils
from tfx.components.trainer import fn_args_utils

from tfx_metric_learning.core.splits import VALID as VALID_SPLIT
from tfx_metric_learning.trainer_module import (
    datasets,
    distribution,
    export,
    guards,
    resume,
    selection,
    tuning_space,
)
from tfx_metric_learning.trainer_module import model as model_lib
from tfx_metric_learning.trainer_module import spec as trainer_spec
from tfx_metric_learning.trainer_module import warm_start as warm_start_lib
from tfx_metric_learning.trainer_module.job import TrainingJob, training_config
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
    """Trains the embedding model with the configured loss and exports it.

    ``fn_args.custom_config`` holds every ``TrainingSettings`` field (on Kubeflow it is the
    ``training`` runtime parameter); a missing, unknown or bad setting stops here, before any
    data is read, and so does a PairGen output built for another loss. With ``warm_start``
    and a ``base_model`` (the production model, ``components/production``; it holds no model
    on the first run, which then starts cold) the encoder starts from its weights; a Trainer
    killed mid-way resumes (``resume``). With several workers (``TF_CONFIG``) only the chief
    exports, writes the summary and removes the resumable state. The training length is
    the settings' ``epochs`` and ``train_steps``, not TFX's ``train_args``. When PairGen's
    output has a ``valid`` split (the pipeline then makes it the Trainer's eval split,
    ``fn_args.eval_files``), the epoch with the best validation MAP@R is exported, epoch 0
    (before training) included (``selection``); without one, the last epoch. The eval split
    itself is never read here: it is the evaluator's test data. With ``fn_args.hyperparameters``
    (a Tuner's best trial, ``trainer_module/tuning.py``) their values replace the learning
    rate and loss parameters (``tuning_space.apply``), and the summary records them.
    """
    started = time.time()
    training = TrainingSettings.from_dict(
        training_config(fn_args.custom_config),
        complete=True,
        source="the Trainer's custom_config",
    )
    tuned = (fn_args.hyperparameters or {}).get("values") or {}
    if tuned:  # the Tuner's best trial (trainer_module/tuning.py)
        training = tuning_space.apply(training, tuned)
        logging.info("tuned: %s", tuned)
    tf.keras.utils.set_random_seed(training.seed)
    strategy = distribution.make_strategy()
    job = TrainingJob.prepare(
        fn_args,
        training,
        fn_args.transform_output,
        replicas=strategy.num_replicas_in_sync,
    )
    if job.validation is None:
        logging.info("no validation split: training every epoch and keeping the last")
    train_ds = datasets.shard_across_workers(job.train_ds, fn_args.train_files)
    with strategy.scope():
        encoder, trainer = model_lib.build_trainer(
            training, job.feature_dim, job.num_classes, job.feature_names
        )
        best = selection.BestEpoch(encoder) if job.validation is not None else None
        started_from = (
            warm_start_lib.base_model_dir(fn_args.base_model) if training.warm_start else None
        )
        if started_from:
            warm_start_lib.warm_start(encoder, started_from)
            logging.info("warm start: the encoder starts from %s", started_from)
        state = None
        if training.checkpoint_dir:
            inputs = [*fn_args.train_files, *fn_args.eval_files, fn_args.transform_output]
            inputs.append(f"base_model={started_from or ''}")
            folder = resume.state_dir(training.checkpoint_dir, training.to_dict(), inputs)
            state = resume.EpochState(folder, trainer, best=best, strategy=strategy)
        resumed = min(state.restore(), job.epochs) if state else 0
    if resumed:  # the batches of the epochs done are skipped: the same stream as unkilled
        train_ds = train_ds.skip(resumed * job.steps_per_epoch)
    history, selecting = _fit(
        job, strategy, train_ds, encoder, trainer, state, best, resumed, fn_args.model_run_dir
    )
    sample = next(iter(train_ds.take(1)))[0]
    guards.check_finite_model(encoder, guards.first_features(sample), _what(training))

    chief = distribution.is_chief(strategy)
    # every worker saves (saving may need all of them), a non-chief to a temporary folder
    # that is removed again (tf_keras' distributed_file_utils, as Keras' own callbacks do)
    export_dir = distributed_file_utils.write_dirpath(fn_args.serving_model_dir, strategy)
    export.export_serving_model(encoder, job.tft_output, export_dir)
    distributed_file_utils.remove_temp_dirpath(fn_args.serving_model_dir, strategy)
    if state and chief:
        state.delete()
        stale = resume.remove_stale(training.checkpoint_dir, time.time(), keep=state.directory)
        if stale:
            logging.info("removed resumable state left by other trainings: %s", stale)
    if not chief:
        logging.info("not the chief: the export, summary and state clean-up are the chief's")
        return
    summary = _summary(job, strategy, history, best, selecting, resumed, started_from, tuned)
    summary["seconds"] = round(time.time() - started, 2)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    path = os.path.join(fn_args.model_run_dir, trainer_spec.SUMMARY_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("training summary: %s", json.dumps(summary))


def _what(training: TrainingSettings) -> str:
    return f"training {training.loss_spec.name} at learning rate {training.learning_rate}"


def _fit(job, strategy, train_ds, encoder, trainer, state, best, resumed, log_dir):
    """``trainer.fit`` with the guards, selection, resume and logging callbacks.

    Stops with ``guards.NonFiniteModelError`` when the loss or weights stop being finite.
    Returns the history and the selection callbacks (one, or none without a valid split).
    """
    training, epochs = job.training, job.epochs
    name, devices = distribution.describe_strategy(strategy)
    logging.info(
        "training %s (%s) on %d examples: %d replicas (%s), global batch %d, %d epochs x %d steps",
        training.loss_spec.name,
        training.full_loss_params(),
        job.train_examples,
        strategy.num_replicas_in_sync,
        f"{name}: {', '.join(devices)}",
        training.batch_size,
        epochs,
        job.steps_per_epoch,
    )
    weights_guard = guards.StopOnNonFiniteWeights()
    saving = [resume.SaveEachEpoch(state, epochs)] if state else []
    selecting = (
        [selection.KeepBestEpoch(encoder, *job.validation, best, start_epoch=resumed)]
        if job.validation is not None
        else []
    )
    history = trainer.fit(
        train_ds,
        epochs=epochs,
        initial_epoch=resumed,
        steps_per_epoch=job.steps_per_epoch,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.TerminateOnNaN(),
            weights_guard,
            *selecting,  # before saving: the saved state holds this epoch's offer
            *saving,
            # writes from the chief only (a non-chief into a temporary folder it removes)
            tf.keras.callbacks.TensorBoard(log_dir=log_dir),
            tf.keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: logging.info(
                    "epoch %d/%d: %s",
                    epoch + 1,
                    epochs,
                    ", ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items()),
                )
            ),
        ],
    )
    losses = [float(v) for v in history.history.get("loss", [])]
    if not all(math.isfinite(v) for v in losses):
        raise guards.NonFiniteModelError(
            f"{_what(training)}: the loss is not finite ({losses}); nothing was exported: lower "
            f"--learning-rate"
        )
    if weights_guard.bad:
        raise guards.NonFiniteModelError(
            f"{_what(training)}: weights became non-finite {weights_guard.bad}; nothing was "
            f"exported: lower --learning-rate"
        )
    return history, selecting


def _summary(job, strategy, history, best, selecting, resumed, started_from, tuned) -> dict:
    """The training summary (``trainer_spec.SUMMARY_FILE``) the run report and Leaderboard read."""
    training = job.training
    name, devices = distribution.describe_strategy(strategy)
    replicas = strategy.num_replicas_in_sync
    summary: dict[str, Any] = {
        "loss": training.loss_spec.name,
        "loss_params": training.full_loss_params(),
        "pair_gen_mode": job.built["mode"],
        "strategy": name,
        "num_replicas": replicas,
        "devices": devices,
        "global_batch_size": training.batch_size,
        "per_replica_batch_size": training.batch_size // replicas,
        "epochs": job.epochs,
        "steps_per_epoch": job.steps_per_epoch,
        "total_steps": job.epochs * job.steps_per_epoch,
        "resumed_after_epoch": resumed,
        "warm_start_asked": training.warm_start,
        "warm_started_from": started_from,
        "train_examples": job.train_examples,
        "num_classes": job.num_classes,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "selection": (
            {
                "split": VALID_SPLIT,
                "metric": selection.METRIC,
                "validation_rows": len(job.validation[1]),
                "kept_epoch": int(best.epoch.numpy()),
                "value": float(best.value.numpy()),
                "before_training": selecting[0].before_training,
            }
            if best is not None
            else {"kept_epoch": job.epochs, "split": None}
        ),
        "tuned": tuned or None,
        "learning_rate": training.learning_rate,
    }
    return summary
