"""What a Tuner searches and how its result changes the training settings (no TensorFlow).

The search space (``search_space``) is what a candidate did not set itself:

- ``learning_rate``: log-uniform over ``LEARNING_RATES`` (1e-4 .. 1e-2);
- each of the loss's ``TUNED_PARAMS`` (``margin``, ``temperature``) with a positive float
  default ``v``: log-uniform over ``[v / SPREAD, v x SPREAD]``, named ``loss.<param>``.

``apply`` turns a trial's values into training settings; ``trainer_module/tuning.py`` runs
the search (TFX's ``Tuner``, KerasTuner), ``run_fn`` applies the best trial's values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfx_metric_learning.trainer_module.settings import TrainingSettings

# the Tuner's custom_config keys, beside every training setting
TRIALS_KEY = "tuning_trials"
SPACE_KEY = "tuning_space"
LEARNING_RATES = (1e-4, 1e-2)
TUNED_PARAMS = ("margin", "temperature")
SPREAD = 4.0
LOSS_PREFIX = "loss."
LEARNING_RATE = "learning_rate"
DIVERGED = -1.0


def search_space(training: TrainingSettings, fixed: set[str]) -> dict[str, list[float]]:
    """``{name: [low, high]}`` to search, log-uniform; ``fixed``: names the candidate set.

    ``fixed`` holds training setting names (``learning_rate``) and loss parameter names
    (``margin``) a candidate gave explicitly: those are not searched.
    """
    space: dict[str, list[float]] = {}
    if LEARNING_RATE not in fixed:
        space[LEARNING_RATE] = list(LEARNING_RATES)
    for name, value in sorted(training.full_loss_params().items()):
        if name in TUNED_PARAMS and name not in fixed:
            if isinstance(value, float) and not isinstance(value, bool) and value > 0:
                space[LOSS_PREFIX + name] = [value / SPREAD, value * SPREAD]
    return space


def apply(training: TrainingSettings, values: dict[str, Any]) -> TrainingSettings:
    """``training`` with tuned ``values`` (``learning_rate``, ``loss.<param>``), validated."""
    params = dict(training.loss_params)
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == LEARNING_RATE:
            changes[LEARNING_RATE] = float(value)
        elif name.startswith(LOSS_PREFIX):
            params[name[len(LOSS_PREFIX) :]] = float(value)
        else:
            raise ValueError(f"unknown tuned value {name!r}; valid: {LEARNING_RATE}, loss.<param>")
    tuned = dataclasses.replace(training, loss_params=params, **changes)
    tuned.validate()
    return tuned.resolved()
