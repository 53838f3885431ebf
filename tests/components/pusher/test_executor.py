"""Pushes are all-or-nothing: a push killed by a real SIGKILL leaves no loadable partial model,
and the next push removes what it left."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.pusher import executor
from tfx_metric_learning.components.retrieval_evaluator.spec import BLESSING_METRICS_FILE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real SavedModel (a variable and a signature)."""
    path = str(tmp_path_factory.mktemp("model") / "Format-Serving")
    module = tf.Module()
    module.scale = tf.Variable(3.0)
    module.f = tf.function(lambda x: x * module.scale, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, path, signatures={"serving_default": module.f})
    return path


def files_of(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def test_a_push_is_the_whole_model_and_loads_back(tmp_path, model_dir):
    base = str(tmp_path / "serving")
    path = executor.push(model_dir, base, "100")
    assert path == os.path.join(base, "100") and os.listdir(base) == ["100"]
    assert files_of(path) == files_of(model_dir)
    loaded = tf.saved_model.load(path)
    assert float(loaded.signatures["serving_default"](tf.constant([2.0]))["output_0"][0]) == 6.0


def test_leftovers_of_killed_pushes_are_removed_and_complete_versions_kept(tmp_path, model_dir):
    base = tmp_path / "serving"
    executor.push(model_dir, str(base), "100")
    (base / ".push-200" / "variables").mkdir(parents=True)  # killed while staging
    (base / "300" / "variables").mkdir(parents=True)  # TFX's own Pusher killed mid-copy
    (base / "notes").mkdir()  # not ours: kept
    (base / ".keep").write_text("")  # a file, listed first: kept, and the rest still looked at
    executor.push(model_dir, str(base), "400")
    assert sorted(os.listdir(base)) == [".keep", "100", "400", "notes"]


KILLED_PUSH = textwrap.dedent(
    """
    import os, signal, sys
    from tfx.utils import io_utils
    from tfx_metric_learning.components.pusher import executor

    copy_file = io_utils.copy_file

    def copy_then_die(src, dst, overwrite=False):
        copy_file(src, dst, overwrite)
        if dst.endswith("saved_model.pb.tmp"):  # the last file is being written
            with open(dst, "r+b") as f:
                f.truncate(10)  # as a copy cut short would leave it
            os.kill(os.getpid(), signal.SIGKILL)

    io_utils.copy_file = copy_then_die
    executor.push(sys.argv[1], sys.argv[2], "500")
    """
)


def test_a_push_killed_by_sigkill_is_never_loadable_and_the_next_push_completes(
    tmp_path, model_dir
):
    base = tmp_path / "serving"
    executor.push(model_dir, str(base), "100")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_PUSH, model_dir, str(base)],
        capture_output=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # what a server scans: only the complete version 100; the killed push is a hidden folder
    assert sorted(os.listdir(base)) == [".push-500", "100"]
    assert not os.path.exists(base / ".push-500" / "saved_model.pb")
    executor.push(model_dir, str(base), "600")
    assert sorted(os.listdir(base)) == ["100", "600"]
    assert files_of(base / "600") == files_of(model_dir)


def test_without_folder_rename_files_move_one_by_one_saved_model_last(
    tmp_path, model_dir, monkeypatch
):
    renamed = []
    real_rename = executor.fileio.rename

    def object_store_rename(src, dst, overwrite=False):
        if os.path.isdir(src):
            raise OSError("folder rename is not supported")  # as on GCS
        renamed.append(os.path.basename(dst))
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(executor.fileio, "rename", object_store_rename)
    path = executor.push(model_dir, str(tmp_path / "serving"), "700")
    assert renamed[-1] == "saved_model.pb" and renamed.count("saved_model.pb") == 2
    assert files_of(path) == files_of(model_dir)
    assert os.listdir(tmp_path / "serving") == ["700"]


@pytest.mark.parametrize("left", ["another push's complete version", "an empty folder"])
def test_a_failed_folder_rename_keeps_a_complete_version_and_finishes_a_partial_one(
    tmp_path, model_dir, monkeypatch, left
):
    """The folder rename fails and leaves ``left`` at the version's path."""
    base = tmp_path / "serving"
    target = base / "750"
    moved = []
    real_rename = executor.fileio.rename

    def failing_rename(src, dst, overwrite=False):
        if os.path.isdir(src):
            if left == "an empty folder":
                os.makedirs(dst)
            else:  # another pusher completed the same version first
                shutil.copytree(model_dir, dst)
                (Path(dst) / "theirs").write_text("")
            raise OSError(f"{dst} exists")
        if Path(dst).is_relative_to(target):
            moved.append(dst)
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(executor.fileio, "rename", failing_rename)
    if left == "an empty folder":
        assert executor.push(model_dir, str(base), "750") == str(target)
        assert files_of(target) == files_of(model_dir) and moved
        return
    with pytest.raises(OSError, match="exists"):
        executor.push(model_dir, str(base), "750")
    assert not moved and (target / "theirs").exists()


def _destination(base) -> str:
    """The Pusher's ``push_destination`` property: a filesystem folder, as JSON."""
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    return proto_utils.proto_to_json(
        pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base))
        )
    )


def _pusher_inputs(tmp_path, model_dir, blessed):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = os.path.dirname(model_dir)  # the Trainer's artifact: <uri>/Format-Serving
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / f"blessing-{blessed}")
    os.makedirs(blessing.uri, exist_ok=True)
    blessing.set_int_custom_property("blessed", int(blessed))
    with open(os.path.join(blessing.uri, BLESSING_METRICS_FILE), "w") as f:
        json.dump(
            {"blessed": blessed, "comparison_metric": "map_at_r", "metrics": {"map_at_r": 0.9}}, f
        )
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{blessed}")
    return {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]}


def test_a_blessed_push_becomes_the_production_record_and_an_unblessed_one_does_not(
    tmp_path, model_dir
):

    base = tmp_path / "serving"
    destination = _destination(base)
    props = {"push_destination": destination, production_spec.PIPELINE_RUN_KEY: "run-7"}
    inputs, outputs = _pusher_inputs(tmp_path, model_dir, True)
    executor.Executor().Do(inputs, outputs, props)
    found = production_record.read(str(base))
    assert found.found and found.record["run"] == "run-7"
    assert found.record["model_uri"] == outputs["pushed_model"][0].get_string_custom_property(
        "pushed_destination"
    )
    assert found.record["metrics"] == {"map_at_r": 0.9}
    assert found.record["source_model_uri"] == inputs["model"][0].uri
    before = (base / production_spec.RECORD_FILE).read_text()
    inputs, outputs = _pusher_inputs(tmp_path, model_dir, False)
    executor.Executor().Do(inputs, outputs, props)
    assert outputs["pushed_model"][0].get_int_custom_property("pushed") == 0
    assert (base / production_spec.RECORD_FILE).read_text() == before


def _gallery(tmp_path, files=None):
    from tfx_metric_learning.components.gallery_index import spec as gallery_spec

    folder = tmp_path / "gallery"
    folder.mkdir()
    for name in files if files is not None else gallery_spec.PUSHED_FILES:
        content = json.dumps(
            {
                "built": True,
                "index": {"rows": 3, "kind": "flat"},
                "match": {"threshold": 0.8, "precision": 0.99},
            }
        )
        (folder / name).write_text(content if name == gallery_spec.INFO_FILE else name)
    (folder / gallery_spec.EMBEDDINGS_DIR).mkdir()  # not pushed
    return str(folder)


def test_a_gallery_is_pushed_in_the_same_version_before_the_model_file(
    tmp_path, model_dir, monkeypatch
):
    from tfx_metric_learning.components.gallery_index import spec as gallery_spec

    renamed = []
    real_rename = executor.fileio.rename

    def object_store_rename(src, dst, overwrite=False):
        if os.path.isdir(src):
            raise OSError("folder rename is not supported")
        renamed.append(os.path.relpath(dst, str(tmp_path / "serving" / "800")))
        return real_rename(src, dst, overwrite)

    monkeypatch.setattr(executor.fileio, "rename", object_store_rename)
    path = executor.push(model_dir, str(tmp_path / "serving"), "800", _gallery(tmp_path))
    pushed = sorted(os.path.join(gallery_spec.PUSHED_SUBDIR, n) for n in gallery_spec.PUSHED_FILES)
    assert files_of(path) == sorted(files_of(model_dir) + pushed)
    assert renamed[-1] == "saved_model.pb"  # the gallery's files moved before it
    assert set(pushed) <= set(renamed[:-1])


def test_a_gallery_missing_a_file_stops_the_push_before_any_version_exists(tmp_path, model_dir):
    from tfx_metric_learning.components.gallery_index import spec as gallery_spec

    broken = _gallery(tmp_path, files=[gallery_spec.INFO_FILE])
    base = tmp_path / "serving"
    with pytest.raises(FileNotFoundError, match=f"has no {gallery_spec.INDEX_FILE}"):
        executor.push(model_dir, str(base), "900", broken)
    assert not (base / "900").exists()
    executor.push(model_dir, str(base), "901")  # the next push removes the staging leftovers
    assert os.listdir(base) == ["901"]


def test_the_production_record_names_the_pushed_gallery(tmp_path, model_dir):

    from tfx_metric_learning.components.gallery_index import spec as gallery_spec

    base = tmp_path / "serving"
    destination = _destination(base)
    inputs, outputs = _pusher_inputs(tmp_path, model_dir, True)
    gallery = gallery_spec.GalleryIndex()
    gallery.uri = _gallery(tmp_path)
    inputs[gallery_spec.GALLERY_INDEX_KEY] = [gallery]
    executor.Executor().Do(inputs, outputs, {"push_destination": destination})
    record = production_record.read(str(base)).record
    assert record["gallery"] == {
        "uri": os.path.join(record["model_uri"], gallery_spec.PUSHED_SUBDIR),
        "rows": 3,
        "kind": "flat",
        "match_threshold": 0.8,
        "match_precision": 0.99,
        "signature": None,
    }


def test_a_gallery_with_the_lookup_model_pushes_that_model_in_the_trainers_place(
    tmp_path, model_dir
):
    """The GalleryIndex's re-saved model (``lookup`` signature) is pushed and archived; the
    record still names the Trainer's model as the source and says which signature looks up."""

    from tfx_metric_learning.components.gallery_index import spec as gallery_spec

    folder = _gallery(tmp_path)
    info_path = os.path.join(folder, gallery_spec.INFO_FILE)
    info = json.load(open(info_path)) | {gallery_spec.LOOKUP_SIGNATURE: True}
    open(info_path, "w").write(json.dumps(info))
    module = tf.Module()
    module.scale = tf.Variable(5.0)  # tells the two models apart
    module.f = tf.function(lambda x: x * module.scale, input_signature=[tf.TensorSpec([None])])
    lookup_model = os.path.join(folder, gallery_spec.SERVING_MODEL_DIR)
    tf.saved_model.save(module, lookup_model, signatures={"serving_default": module.f})
    base = tmp_path / "serving"
    destination = _destination(base)
    inputs, outputs = _pusher_inputs(tmp_path, model_dir, True)
    gallery = gallery_spec.GalleryIndex()
    gallery.uri = folder
    inputs[gallery_spec.GALLERY_INDEX_KEY] = [gallery]
    executor.Executor().Do(inputs, outputs, {"push_destination": destination})
    record = production_record.read(str(base)).record
    assert record["gallery"]["signature"] == gallery_spec.LOOKUP_SIGNATURE
    assert record["source_model_uri"] == inputs["model"][0].uri
    pushed = record["model_uri"]
    loaded = tf.saved_model.load(pushed)
    assert float(loaded.signatures["serving_default"](tf.constant([2.0]))["output_0"][0]) == 10.0
    pushed_files = [f for f in files_of(pushed) if not f.startswith(gallery_spec.PUSHED_SUBDIR)]
    assert pushed_files == files_of(lookup_model)
    archived = outputs["pushed_model"][0].uri
    assert files_of(archived) == files_of(lookup_model)
