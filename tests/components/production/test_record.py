"""The production record: written whole or not at all, read without ever raising on content."""

import json
import os

import pytest
from tfx.dsl.io import fileio

from tfx_metric_learning.components.production import record, spec


def _version(base, name):
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"model")
    return str(folder)


def test_no_record_is_nothing_in_production(tmp_path):
    found = record.read(str(tmp_path / "serving"))
    assert found.status == spec.NONE and not found.found
    assert "no production record at" in found.reason


def test_a_written_record_reads_back_and_every_record_stays_in_the_history(tmp_path):
    base = tmp_path / "serving"
    for version in ("100", "200"):
        uri = _version(base, version)
        record.write(str(base), record.make_record(version, uri, metrics={"map_at_r": 0.5}))
    found = record.read(str(base))
    assert found.found and found.record["version"] == "200"
    assert found.record["metrics"] == {"map_at_r": 0.5}
    assert [r["version"] for r in record.history(str(base))] == ["100", "200"]
    # nothing but the versions, the record and its history at the serving location
    assert sorted(os.listdir(base)) == sorted(["100", "200", spec.HISTORY_DIR, spec.RECORD_FILE])


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "holds a list"),
        (json.dumps({"format": 1, "version": "1"}), "lacks model_uri"),
        (json.dumps({"format": 9, "version": "1", "model_uri": "x"}), "has format 9"),
    ],
)
def test_a_corrupt_record_is_unusable_and_says_why(tmp_path, content, reason):
    base = tmp_path / "serving"
    base.mkdir()
    (base / spec.RECORD_FILE).write_text(content)
    found = record.read(str(base))
    assert found.status == spec.UNUSABLE and reason in found.reason


def test_a_record_naming_a_missing_version_is_unusable(tmp_path):
    base = tmp_path / "serving"
    uri = _version(base, "100")
    record.write(str(base), record.make_record("100", uri))
    os.remove(os.path.join(uri, "saved_model.pb"))
    found = record.read(str(base))
    assert found.status == spec.UNUSABLE and "holds no saved_model.pb" in found.reason


def test_a_write_killed_before_its_rename_leaves_the_old_record(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    record.write(str(base), record.make_record("100", _version(base, "100")))
    before = (base / spec.RECORD_FILE).read_text()
    rename = fileio.rename

    def killed(src, dst, overwrite=False):
        if dst.endswith(spec.RECORD_FILE):
            raise KeyboardInterrupt  # the process dies between writing and renaming
        return rename(src, dst, overwrite=overwrite)

    monkeypatch.setattr(fileio, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        record.write(str(base), record.make_record("200", _version(base, "200")))
    assert (base / spec.RECORD_FILE).read_text() == before
    assert record.read(str(base)).record["version"] == "100"


def test_a_record_needs_version_and_model(tmp_path):
    with pytest.raises(ValueError, match="model_uri"):
        record.write(str(tmp_path), {"format": 1, "version": "1"})
