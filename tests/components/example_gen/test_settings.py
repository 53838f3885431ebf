"""Ingest settings travel through ExampleGen's custom_config (a protobuf Struct) unchanged."""

import pytest
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from tfx_metric_learning.components.example_gen import inputs
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.core.stage_settings import SettingsError


def _unpacked(settings):
    packed = proto_utils.proto_to_json(inputs.pack_settings(settings))
    return inputs.settings_from({standard_component_specs.CUSTOM_CONFIG_KEY: packed})


def test_settings_survive_the_struct_round_trip():
    settings = IngestSettings(
        label_column="Species Name", protocol="unseen_classes", eval_classes=["a", "b"], seed=7
    )
    back = _unpacked(settings)
    assert back == settings and isinstance(back.seed, int)
    assert back.label_feature == "Species_Name"
    assert _unpacked(IngestSettings()).eval_classes is None


def test_bad_ingest_settings_are_refused():
    with pytest.raises(SettingsError, match="'protocol' must be one of seen_classes"):
        IngestSettings(protocol="some").validate()
    with pytest.raises(SettingsError, match=r"'eval_fraction' must be in \(0, 1\)"):
        IngestSettings(eval_fraction=1.0).validate()
    with pytest.raises(SettingsError, match="missing"):
        inputs.settings_from({})
