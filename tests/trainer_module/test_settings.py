"""Training settings: what each loss makes PairGen build, and the checks on them."""

import math

import pytest

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.settings import TrainingSettings


@pytest.mark.parametrize(
    "loss, sampler, mode",
    [
        ("triplet", "random", "triplets"),
        ("pairwise_ranking", "random", "triplets"),
        ("contrastive", "random", "pairs"),
        ("triplet_k_negatives", "random", "triplets_k"),
        ("triplet_semihard", "random", "none"),
        ("sparse_categorical_crossentropy", "random", "none"),
        ("triplet_hard", "pk", "pk_batches"),
    ],
)
def test_pair_gen_mode_follows_the_loss(loss, sampler, mode):
    assert TrainingSettings(loss=loss, batch_sampler=sampler).pair_gen_mode == mode


def test_every_registered_loss_is_valid_with_its_defaults():
    for name in registry.names():
        TrainingSettings(loss=name).validate()


def test_shape_of_what_pair_gen_builds():
    settings = TrainingSettings(loss="triplet_k_negatives", loss_params={"num_negatives": 3})
    assert settings.num_negatives == 3
    assert TrainingSettings(loss="triplet_k_negatives").num_negatives == 5  # the loss's default
    assert TrainingSettings(loss="triplet").num_negatives == 1
    pk = TrainingSettings(loss="triplet_hard", batch_sampler="pk", batch_size=64, pk_classes=8)
    assert (pk.pk_classes, pk.pk_examples) == (8, 8)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"loss": "nope"}, "unknown loss 'nope'; valid losses: "),
        ({"loss": "triplet", "loss_params": {"margin": -1}}, "parameter 'margin'"),
        ({"loss": "triplet", "loss_params": {"margni": 1}}, "has no parameter 'margni'"),
        ({"loss": "triplet", "batch_sampler": "pk"}, "'triplet' consumes triplets"),
        ({"batch_sampler": "pk", "batch_size": 100, "pk_classes": 8}, "must be pk_classes"),
        ({"learning_rate": math.nan}, "'learning_rate' must be a finite number"),
        ({"learning_rate": 0.0}, "'learning_rate' must be a finite number > 0"),
        ({"hidden_units": [64, 0]}, "'hidden_units'"),
        ({"epochs": 0}, "'epochs' must be an integer >= 1"),
    ],
)
def test_bad_training_settings_are_refused(values, message):
    with pytest.raises(SettingsError, match=message):
        TrainingSettings.from_dict(values)


def test_resolved_fills_the_loss_defaults_without_changing_the_original():
    settings = TrainingSettings(loss="contrastive", loss_params={"margin": 0.5})
    full = settings.resolved()
    assert settings.loss_params == {"margin": 0.5}
    assert full.loss_params == {"margin": 0.5, "distance": "l2", "factor": 0.5, "similar_label": 1}
