"""A Pusher executor whose push to a filesystem is all-or-nothing, and cleans up after kills.

TFX 1.16's Pusher copies the model straight into ``<base>/<version>/``, ``saved_model.pb``
last (TF Serving loads a version only once that file exists). A run killed during the copy
leaves a version folder without ``saved_model.pb`` for good, and one killed while that file
itself is copied leaves a truncated ``saved_model.pb`` a server may try to load. Here
(``push``):

1. leftovers of killed pushes are removed first: ``.push-*`` staging folders, and version
   folders without ``saved_model.pb`` (no server ever loads those);
2. the model is copied into a staging folder ``<base>/.push-<version>`` (a name no server takes
   for a version), ``saved_model.pb`` last and itself through a temporary name;
3. the staging folder is renamed to ``<base>/<version>``: one atomic rename on a local or POSIX
   filesystem. Object stores have no folder rename (TensorFlow's GCS client copies each
   object); there, the files are renamed one by one, ``saved_model.pb`` last, so a server
   still sees either no loadable model or the whole of it.

4. the production record at the serving location (``components/production/record.py``) is
   made to name the new version, with the metrics it was blessed with (the evaluator's
   ``BLESSING_METRICS_FILE`` in the blessing), the run and the time. It is written only once
   the version folder is complete, so it never names a model a server cannot load; a push
   killed before it leaves the previous record, and production unchanged.

A gallery index (``components/gallery_index``), when the Pusher is given one, is copied into
the same staging folder before the model (``<version>/assets.extra/gallery/``: TF Serving
ignores ``assets.extra``), so a version holds both or neither, and the production record
names it with its match threshold. A gallery small enough for the ``lookup`` signature
carries the Trainer's model re-saved with it (``gallery_spec.SERVING_MODEL_DIR``: the same
weights and signatures, checked by the GalleryIndex against the original); that model is
the one pushed, and archived, in its place.

The rest (the blessing check, the version from the clock, the archived copy in the pushed
model's artifact, its ``pushed*`` properties) is TFX's own.
"""

from __future__ import annotations

import json
import os
import time

from absl import logging
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.retrieval_evaluator.spec import BLESSING_METRICS_FILE

STAGING_PREFIX = ".push-"


def is_complete(version_dir: str) -> bool:
    """Whether a version folder holds a model a server would load."""
    return fileio.exists(os.path.join(version_dir, production_spec.SAVED_MODEL))


def remove_leftovers(base: str) -> list[str]:
    """Removes staging folders and version folders without ``saved_model.pb``; their paths."""
    if not fileio.exists(base):
        return []
    removed = []
    for name in sorted(fileio.listdir(base)):
        path = os.path.join(base, name.rstrip("/"))
        if not fileio.isdir(path):
            continue
        name = name.rstrip("/")
        if name.startswith(STAGING_PREFIX) or (name.isdigit() and not is_complete(path)):
            fileio.rmtree(path)
            removed.append(path)
    return removed


def _copy_model(model_path: str, target: str, gallery_dir: str = "") -> None:
    """Copies the model into ``target``: its files, the gallery, ``saved_model.pb`` last.

    ``copy_dir`` empties ``target`` first, so the gallery goes in after it; ``saved_model.pb``
    goes through a temporary name.
    """
    io_utils.copy_dir(model_path, target, deny_regex_patterns=[r"saved_model\.pb$"])
    if gallery_dir:  # before saved_model.pb: a version a server loads holds its gallery
        _copy_gallery(gallery_dir, os.path.join(target, gallery_spec.PUSHED_SUBDIR))
    source = os.path.join(model_path, production_spec.SAVED_MODEL)
    tmp = os.path.join(target, f"{production_spec.SAVED_MODEL}.tmp")
    io_utils.copy_file(source, tmp, overwrite=True)
    fileio.rename(tmp, os.path.join(target, production_spec.SAVED_MODEL), overwrite=True)


def _rename_files(source: str, target: str) -> None:
    """Renames every file of ``source`` under ``target``, ``saved_model.pb`` last."""
    files = [os.path.join(root, name) for root, _, names in fileio.walk(source) for name in names]
    files.sort(key=lambda p: os.path.relpath(p, source) == production_spec.SAVED_MODEL)
    for path in files:
        dst = os.path.join(target, os.path.relpath(path, source))
        fileio.makedirs(os.path.dirname(dst))
        fileio.rename(path, dst, overwrite=True)
    fileio.rmtree(source)


def _copy_gallery(gallery_dir: str, target: str) -> None:
    """The gallery's ``PUSHED_FILES`` copied into ``target``; a missing one is refused."""
    fileio.makedirs(target)
    for name in gallery_spec.PUSHED_FILES:
        source = os.path.join(gallery_dir, name)
        if not fileio.exists(source):
            raise FileNotFoundError(f"the gallery index {gallery_dir} has no {name}")
        io_utils.copy_file(source, os.path.join(target, name), overwrite=True)


def push(model_path: str, base: str, version: str, gallery_dir: str = "") -> str:
    """Pushes the SavedModel in ``model_path`` to ``base/version`` all-or-nothing; its path.

    ``gallery_dir``: a gallery index artifact pushed with it (``gallery_spec.PUSHED_SUBDIR``).
    """
    removed = remove_leftovers(base)
    if removed:
        logging.warning("removed what killed pushes left: %s", ", ".join(removed))
    serving_path = os.path.join(base, version)
    if fileio.exists(serving_path):
        logging.info("%s already exists; this push is skipped", serving_path)
        return serving_path
    staging = os.path.join(base, f"{STAGING_PREFIX}{version}")
    fileio.makedirs(staging)
    _copy_model(model_path, staging, gallery_dir)
    try:
        fileio.rename(staging, serving_path, overwrite=False)
    except Exception:  # noqa: BLE001 - a filesystem without folder rename: file by file
        if fileio.exists(serving_path) and is_complete(serving_path):
            raise
        _rename_files(staging, serving_path)
    return serving_path


class Executor(tfx_pusher.Executor):
    """TFX's Pusher executor with ``push`` for filesystem destinations."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {destination} is not a filesystem")
        version = str(int(time.time()))
        base = destination.filesystem.base_directory
        previous = production_record.read(base)
        gallery_dir = _built_gallery(input_dict.get(gallery_spec.GALLERY_INDEX_KEY) or [])
        model_path = lookup_model_path(gallery_dir) or model_path
        serving_path = push(model_path, base, version, gallery_dir)
        logging.info("Model written to serving path %s.", serving_path)
        blessed_with = _blessed_metrics(input_dict)
        path = production_record.write(
            base,
            production_record.make_record(
                version,
                serving_path,
                source_model_uri=artifact_utils.get_single_uri(
                    input_dict[standard_component_specs.MODEL_KEY]
                ),
                metrics=blessed_with.get("metrics"),
                comparison_metric=blessed_with.get("comparison_metric", ""),
                scored_on=blessed_with.get("scored_on"),
                pipeline=self._pipeline_name(),
                run=exec_properties.get(production_spec.PIPELINE_RUN_KEY)
                or (self._context.pipeline_run_id if self._context else None)
                or "",
                previous_version=(previous.record or {}).get("version") if previous.found else None,
                gallery=_gallery_record(gallery_dir, serving_path) if gallery_dir else None,
            ),
        )
        logging.info("production record %s names version %s", path, version)
        io_utils.copy_dir(model_path, model_push.uri)  # the archived copy, as TFX keeps it
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)

    def _pipeline_name(self) -> str:
        info = self._context.pipeline_info if self._context else None
        return info.id if info is not None else ""


def _built_gallery(galleries: list) -> str:
    """The folder of the gallery index to push with the model ("" without one)."""
    if not galleries:
        return ""
    with fileio.open(os.path.join(galleries[0].uri, gallery_spec.INFO_FILE), "r") as f:
        info = json.loads(f.read())
    if not info.get("built"):
        raise ValueError(
            f"the gallery index {galleries[0].uri} was not built ({info.get('reason')}) but its "
            f"model is blessed: rerun the GalleryIndex component"
        )
    return galleries[0].uri


def lookup_model_path(gallery_dir: str) -> str:
    """The gallery's model with the ``lookup`` signature ("" when it has none)."""
    if not gallery_dir:
        return ""
    path = os.path.join(gallery_dir, gallery_spec.SERVING_MODEL_DIR)
    return path if is_complete(path) else ""


def _gallery_record(gallery_dir: str, serving_path: str) -> dict:
    """The production record's ``gallery``: where it was pushed, its size, kind, threshold.

    Read from the gallery's info file (artifact properties change type between backends).
    """
    with fileio.open(os.path.join(gallery_dir, gallery_spec.INFO_FILE), "r") as f:
        info = json.loads(f.read())
    return {
        "uri": os.path.join(serving_path, gallery_spec.PUSHED_SUBDIR),
        "rows": info["index"]["rows"],
        "kind": info["index"]["kind"],
        "match_threshold": info["match"]["threshold"],
        "match_precision": info["match"]["precision"],
        "signature": gallery_spec.LOOKUP_SIGNATURE
        if info.get(gallery_spec.LOOKUP_SIGNATURE)
        else None,
    }


def _blessed_metrics(input_dict) -> dict:
    """What the evaluator wrote beside the blessing (``{}`` for another evaluator's blessing)."""
    blessings = input_dict.get(standard_component_specs.MODEL_BLESSING_KEY) or []
    if not blessings:
        return {}
    path = os.path.join(blessings[0].uri, BLESSING_METRICS_FILE)
    if not fileio.exists(path):
        return {}
    with fileio.open(path, "r") as f:
        return json.loads(f.read())
