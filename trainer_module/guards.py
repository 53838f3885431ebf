"""What stops a training before or after it runs, naming why.

Before: PairGen's output must be what the loss consumes (``check_pair_gen``). During and
after: the loss, the weights and the embeddings must stay finite (``StopOnNonFiniteWeights``,
``check_finite_model``); nothing is exported otherwise (``NonFiniteModelError``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfx_metric_learning.core import keys
from tfx_metric_learning.trainer_module import pair_gen_build
from tfx_metric_learning.trainer_module.datasets import load_schema
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def built_by_pair_gen(schema_path: str) -> dict[str, Any]:
    """PairGen's build record (mode, K, P x K, split counts) from the schema it handed us."""
    return pair_gen_build.read(load_schema(schema_path), schema_path)


class PairGenMismatchError(ValueError):
    """PairGen built data for another loss than the one the Trainer is asked to train."""


def check_pair_gen(training: TrainingSettings, built: dict[str, Any]) -> None:
    """Stops before training when PairGen's output is not what the loss consumes.

    ``built`` is PairGen's statistics (its ``mode`` and shape). They disagree when the
    training settings changed without PairGen following them (e.g. a stale cached PairGen).
    """
    spec = training.loss_spec
    want = training.pair_gen_mode
    got = built.get("mode")
    if got != want:
        raise PairGenMismatchError(
            f"loss {training.loss!r} consumes {spec.input_mode} input, which PairGen builds in "
            f"mode {want!r}, but PairGen built mode {got!r}; re-run PairGen with these "
            f"training settings (on Kubeflow, PairGen follows the training runtime parameter)"
        )
    if want == "triplets_k" and built.get("num_negatives") != training.num_negatives:
        raise PairGenMismatchError(
            f"loss {training.loss!r} takes num_negatives={training.num_negatives}, but PairGen "
            f"built {built.get('num_negatives')} negatives per anchor"
        )
    if want == "pk_batches" and (built.get("pk_classes"), built.get("pk_examples")) != (
        training.pk_classes,
        training.pk_examples,
    ):
        raise PairGenMismatchError(
            f"batch_size {training.batch_size} with pk_classes {training.pk_classes} needs "
            f"{training.pk_classes} x {training.pk_examples} groups, but PairGen built "
            f"{built.get('pk_classes')} x {built.get('pk_examples')}"
        )


class NonFiniteModelError(FloatingPointError):
    """Training produced weights or embeddings that are not finite; nothing is exported."""


def non_finite_variables(model: tf.keras.Model) -> list[str]:
    """Names of ``model``'s variables holding NaN or inf."""
    return [
        v.name for v in model.variables if not bool(tf.reduce_all(tf.math.is_finite(v)).numpy())
    ]


class StopOnNonFiniteWeights(tf.keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose weights hold NaN or inf.

    Keras' ``TerminateOnNaN`` watches the logged loss only; a mining loss can stay finite
    while the weights are NaN (NaN distances mask every pair out), so the weights are
    checked themselves. ``bad`` names the epoch and the variables.
    """

    def __init__(self):
        super().__init__()
        self.bad: str = ""

    def on_epoch_end(self, epoch, logs=None):
        names = non_finite_variables(self.model)
        if names:
            self.bad = f"after epoch {epoch + 1}, {len(names)} variable(s) ({names[0]}, ...)"
            self.model.stop_training = True


def first_features(inputs) -> tf.Tensor:
    """A ``[B, F]`` feature batch from a batch's model inputs (any input mode)."""
    if not isinstance(inputs, dict):
        return inputs
    for key in (keys.ANCHOR, keys.LEFT):
        if key in inputs:
            return inputs[key]
    raise KeyError(f"no feature batch among the inputs {sorted(inputs)}")


def check_finite_model(encoder: tf.keras.Model, features: tf.Tensor, what: str) -> None:
    """Refuses an encoder with non-finite weights, or non-finite or non-unit embeddings.

    ``features``: a batch of transformed training features. ``what`` names the training in
    the error (loss, learning rate).
    """
    names = non_finite_variables(encoder)
    if names:
        raise NonFiniteModelError(
            f"{what}: the trained weights are not finite ({len(names)} variable(s), e.g. "
            f"{names[0]}); nothing was exported: lower --learning-rate"
        )
    emb = encoder(features, training=False).numpy()
    norms = np.linalg.norm(emb, axis=1)
    if not np.isfinite(emb).all() or not np.allclose(norms, 1.0, atol=1e-3):
        raise NonFiniteModelError(
            f"{what}: the trained encoder gives {int((~np.isfinite(emb).all(axis=1)).sum())} "
            f"non-finite and {int((np.abs(norms - 1) > 1e-3).sum())} non-unit embeddings of "
            f"{len(emb)} training rows; nothing was exported"
        )
