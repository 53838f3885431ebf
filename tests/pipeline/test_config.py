"""The run's configuration: paths made absolute, defaults filled in, bad values refused by name."""

import os

import pytest

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.pipeline.config import PipelineConfig


def test_local_paths_are_made_absolute_and_uris_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = PipelineConfig(pipeline_root="root", data="d.csv", schema_file="s.pbtxt")
    assert config.pipeline_root == str(tmp_path / "root")
    assert config.data == str(tmp_path / "d.csv")
    assert config.metadata_path == os.path.join(config.pipeline_root, "metadata.sqlite")
    assert config.serving_dir == os.path.join(config.pipeline_root, "serving_model")
    assert config.ingest.verdicts_dir.startswith(config.pipeline_root)
    remote = PipelineConfig(pipeline_root="gs://b/pipe", metadata_path="m.sqlite")
    assert remote.pipeline_root == "gs://b/pipe"
    assert remote.serving_dir == "gs://b/pipe/serving_model"
    assert remote.metadata_path == str(tmp_path / "m.sqlite")


def test_a_gallery_catalogue_path_is_resolved_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = PipelineConfig(pipeline_root="root")
    config.gallery = config.gallery.__class__(gallery="catalogue.csv")
    config.__post_init__()
    assert config.gallery.gallery == str(tmp_path / "catalogue.csv")
    with pytest.raises(FileNotFoundError, match="--gallery .*catalogue.csv is not a file"):
        config.validate()
    (tmp_path / "catalogue.csv").write_text("id,a\nx,1\n")
    config.validate()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"beam_workers": -1}, "beam_workers must be >= 0"),
        ({"cpu_replicas": 0}, "cpu_replicas must be >= 1"),
        ({"cpu_replicas": 3}, "must be divisible by cpu_replicas 3"),
        ({"metadata_path": "gs://b/m.sqlite"}, "must be a local file"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(tmp_path, change, message):
    config = PipelineConfig(pipeline_root=str(tmp_path), **change)
    with pytest.raises(SettingsError, match=message):
        config.validate()


def test_data_that_does_not_exist_and_a_pattern_on_a_file_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data .* does not exist"):
        PipelineConfig(pipeline_root=str(tmp_path), data=str(tmp_path / "no.csv")).validate()
    (tmp_path / "d.csv").write_text("a,label\n1,x\n")
    config = PipelineConfig(pipeline_root=str(tmp_path), data=str(tmp_path / "d.csv"))
    config.ingest = config.ingest.__class__(data_pattern="{SPAN}/*.csv")
    with pytest.raises(SettingsError, match="is relative to a data folder"):
        config.validate()
