"""PairGen's settings follow the training settings, at compile time and at run time."""

import pytest

from tfx_metric_learning.components.pair_gen import executor, spec
from tfx_metric_learning.components.pair_gen.settings import PairSettings
from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def test_following_takes_the_shape_the_loss_consumes_and_keeps_the_rest():
    own = PairSettings(triplets_per_anchor=2, block_rows=100, seed=9)
    k_neg = own.following(
        TrainingSettings(loss="triplet_k_negatives", loss_params={"num_negatives": 3})
    )
    assert (k_neg.mode, k_neg.num_negatives) == ("triplets_k", 3)
    assert (k_neg.triplets_per_anchor, k_neg.block_rows, k_neg.seed) == (2, 100, 9)
    pk = own.following(
        TrainingSettings(loss="multi_similarity", batch_sampler="pk", batch_size=32, pk_classes=4)
    )
    assert (pk.mode, pk.pk_classes, pk.pk_examples) == ("pk_batches", 4, 8)


def test_the_executor_follows_the_training_it_is_given():
    compiled = PairSettings().following(TrainingSettings(loss="triplet_semihard"))
    props = {spec.SETTINGS_KEY: compiled.to_json()}
    assert executor.resolve_settings(props).mode == "none"
    runtime = TrainingSettings(loss="contrastive").resolved().to_json()
    props[spec.TRAINING_KEY] = runtime
    assert executor.resolve_settings(props).mode == "pairs"


def test_incomplete_or_bad_settings_stop_the_executor():
    with pytest.raises(SettingsError, match="missing: "):
        executor.resolve_settings({spec.SETTINGS_KEY: '{"mode": "pairs"}'})
    props = {
        spec.SETTINGS_KEY: PairSettings().to_json(),
        spec.TRAINING_KEY: '{"loss": "contrastive"}',
    }
    with pytest.raises(SettingsError, match="training settings in PairGen's training must hold"):
        executor.resolve_settings(props)
    with pytest.raises(SettingsError, match="'mode' must be one of"):
        PairSettings(mode="quads").validate()
