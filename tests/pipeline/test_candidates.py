"""A comparison's candidates: parsing, labels, per-branch settings and node ids."""

import pytest

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.pipeline import candidates
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def test_a_candidate_splits_loss_parameters_from_training_settings():
    c = candidates.parse("triplet_semihard margin=0.2 learning_rate=0.003 hidden_units=512,256")
    assert c.loss_params == {"margin": 0.2}
    assert c.training == {"learning_rate": 0.003, "hidden_units": [512, 256]}
    assert c.label == "triplet_semihard margin=0.2 hidden_units=512,256 learning_rate=0.003"
    settings = c.settings(TrainingSettings(epochs=3, loss="supcon"), seed=7)
    assert settings.loss == "triplet_semihard" and settings.seed == 7 and settings.epochs == 3
    assert settings.loss_params["margin"] == 0.2 and settings.learning_rate == 0.003
    assert settings.hidden_units == [512, 256]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no_such_loss", "no_such_loss"),
        ("supcon margin", "expected KEY=VALUE, got 'margin'"),
        ("supcon margin=0.2", "'margin' is neither a parameter of 'supcon'"),
        ("supcon seed=3", "'seed' is neither"),
        ("supcon temperature=-1", "temperature"),
        ("supcon encoder=cnn", "encoder"),
        ("", "empty --candidate"),
    ],
)
def test_bad_candidates_are_refused_naming_what_is_wrong(text, message):
    with pytest.raises(SettingsError, match=message):
        candidates.parse(text)


def test_defaults_cover_the_families_and_duplicates_are_refused():
    found = candidates.from_options([], [])
    assert [c.label for c in found] == list(candidates.DEFAULT_LOSSES)
    assert [c.loss for c in candidates.from_options(["supcon"], ["supcon temperature=0.2"])] == [
        "supcon",
        "supcon",
    ]
    with pytest.raises(SettingsError, match="given twice: supcon"):
        candidates.from_options(["supcon"], ["supcon"])
    assert candidates.seeds(42, 3) == [42, 43, 44]
    with pytest.raises(SettingsError, match="--seeds must be >= 1"):
        candidates.seeds(0, 0)


def test_branch_ids_are_stable_valid_and_distinct():
    assert candidates.branch_id("supcon", 3) == "supcon_s3"
    a = candidates.branch_id("supcon temperature=0.2", 0)
    b = candidates.branch_id("supcon temperature=0_2", 0)
    assert a != b and a.startswith("supcon_temperature_0_2_") and a.endswith("_s0")
    long = candidates.branch_id("triplet_semihard " + "x=1 " * 40, 1)
    assert len(long) <= 60 and long.replace("_", "").isalnum()
    assert candidates.branch_id("supcon temperature=0.2", 0) == a
