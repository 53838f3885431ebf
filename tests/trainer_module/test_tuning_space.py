"""What a Tuner searches, and how its values become training settings."""

import pytest

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module import tuning_space
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def test_the_space_is_the_learning_rate_and_the_margin_or_temperature_not_set():
    triplet = TrainingSettings(loss="triplet_semihard").resolved()
    margin = triplet.loss_params["margin"]
    assert tuning_space.search_space(triplet, set()) == {
        "learning_rate": [1e-4, 1e-2],
        "loss.margin": [margin / 4, margin * 4],
    }
    supcon = TrainingSettings(loss="supcon").resolved()
    assert set(tuning_space.search_space(supcon, set())) == {"learning_rate", "loss.temperature"}
    # what the candidate set itself is not searched
    assert tuning_space.search_space(triplet, {"margin", "learning_rate"}) == {}
    # a loss without a margin or temperature gets the learning rate only
    ce = TrainingSettings(loss="sparse_categorical_crossentropy").resolved()
    assert tuning_space.search_space(ce, set()) == {"learning_rate": [1e-4, 1e-2]}


def test_apply_sets_the_values_and_validates_them():
    base = TrainingSettings(loss="triplet_semihard", learning_rate=0.001).resolved()
    tuned = tuning_space.apply(base, {"learning_rate": 0.0031, "loss.margin": 0.4})
    assert tuned.learning_rate == 0.0031 and tuned.loss_params["margin"] == 0.4
    assert base.learning_rate == 0.001  # unchanged
    with pytest.raises(ValueError, match="unknown tuned value 'dropout'"):
        tuning_space.apply(base, {"dropout": 0.1})
    with pytest.raises(SettingsError):
        tuning_space.apply(base, {"learning_rate": -1.0})
