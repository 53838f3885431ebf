"""A non-local file system for tests (``ram://``), and ``check_writes_through_fileio``.

``RamFileSystem`` is a Beam ``FileSystem`` for TensorFlow's in-memory ``ram://`` scheme (a
test stand-in for a bucket).

TensorFlow ships a ``ram://`` file system (``tf.io.gfile``); Beam has none for it. This one
delegates every operation to ``tf.io.gfile``, so TensorFlow, TFX's ``fileio`` and Beam's
``FileSystems`` see one and the same in-memory storage: a non-local file system that both
halves of the stack reach, in one process. Importing the module registers it (Beam finds
``FileSystem`` subclasses by their ``scheme``).

One gap is closed on the TensorFlow side too: TensorFlow's ``ram://`` renames only the exact
path, so renaming a folder leaves its files behind, while its GCS and S3 file systems move a
folder with everything under it (TFT and TFX rename folders). ``tf.io.gfile.rename`` is
wrapped here to move a ``ram://`` folder's files one by one, as those file systems do.

Written here because no package provides a Beam file system for ``ram://``; the GCS
emulators on PyPI reach Beam but not TensorFlow's own GCS client (its endpoint is fixed).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from apache_beam.io.filesystem import (
    BeamIOError,
    CompressedFile,
    CompressionTypes,
    FileMetadata,
    FileSystem,
    MatchResult,
)

SCHEME = "ram"


class _Writer(io.BytesIO):
    """Buffers the bytes and writes them with one ``GFile`` call on close."""

    mode = "wb"

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self) -> None:
        if not self.closed:
            with tf.io.gfile.GFile(self._path, "wb") as f:
                f.write(self.getvalue())
        super().close()


class _Reader(io.BytesIO):
    """The whole file's bytes (files here are small test artifacts)."""

    mode = "rb"


class RamFileSystem(FileSystem):
    """``ram://`` through ``tf.io.gfile``."""

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        path = basepath.rstrip("/")
        for p in paths:
            path = f"{path}/{p.strip('/')}"
        return path

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        tf.io.gfile.makedirs(path)

    def has_dirs(self) -> bool:
        return True

    def _list(self, dir_or_prefix: str):
        pattern = dir_or_prefix.rstrip("/") + "/*" if tf.io.gfile.isdir(dir_or_prefix) else None
        for path in tf.io.gfile.glob(pattern or dir_or_prefix + "*"):
            if not tf.io.gfile.isdir(path):
                yield FileMetadata(path, tf.io.gfile.stat(path).length)

    def match(self, patterns, limits=None):
        results = []
        for i, pattern in enumerate(patterns):
            limit = limits[i] if limits else None
            found = []
            for path in sorted(tf.io.gfile.glob(pattern)):
                if not tf.io.gfile.isdir(path):
                    found.append(FileMetadata(path, tf.io.gfile.stat(path).length))
                if limit is not None and len(found) >= limit:
                    break
            results.append(MatchResult(pattern, found))
        return results

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        return self._compressed(_Writer(path), path, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        with tf.io.gfile.GFile(path, "rb") as f:
            raw = _Reader(f.read())
        return self._compressed(raw, path, compression_type)

    @staticmethod
    def _compressed(raw, path, compression_type):
        kind = compression_type or CompressionTypes.AUTO
        if kind == CompressionTypes.AUTO:
            kind = CompressionTypes.detect_compression_type(path)
        if kind == CompressionTypes.UNCOMPRESSED:
            return raw
        return CompressedFile(raw, compression_type=kind)

    def copy(self, source_file_names, destination_file_names):
        for src, dst in zip(source_file_names, destination_file_names, strict=True):
            tf.io.gfile.copy(src, dst, overwrite=True)

    def rename(self, source_file_names, destination_file_names):
        errors = {}
        for src, dst in zip(source_file_names, destination_file_names, strict=True):
            try:
                tf.io.gfile.rename(src, dst, overwrite=True)
            except tf.errors.OpError as e:
                errors[(src, dst)] = e
        if errors:
            raise BeamIOError("rename failed", errors)

    def exists(self, path: str) -> bool:
        return tf.io.gfile.exists(path)

    def size(self, path: str) -> int:
        return tf.io.gfile.stat(path).length

    def last_updated(self, path: str) -> float:
        return tf.io.gfile.stat(path).mtime_nsec / 1e9

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths) -> None:
        for path in paths:
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            elif tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)


def _rename_folder_too(rename):
    def wrapped(src, dst, overwrite=False):
        src, dst = str(src), str(dst)
        if not (src.startswith(f"{SCHEME}://") and tf.io.gfile.isdir(src)):
            return rename(src, dst, overwrite)
        for path in walk(src):
            target = dst.rstrip("/") + path[len(src.rstrip("/")) :]
            tf.io.gfile.makedirs(target.rpartition("/")[0])
            rename(path, target, overwrite)
        try:
            tf.io.gfile.rmtree(src)
        except tf.errors.NotFoundError:  # nothing left under src (an object store has no
            pass  # empty folders): what the rename was for

    return wrapped


tf.io.gfile.rename = _rename_folder_too(tf.io.gfile.rename)


def walk(root: str) -> list[str]:
    """Every file under ``root`` (a ``ram://`` URI), sorted.

    TensorFlow's ``ram://`` lists by name prefix (``model`` also "contains" ``_run`` of a
    sibling ``model_run``), so listed names that do not exist are dropped.
    """
    found = (
        f"{folder.rstrip('/')}/{name}"
        for folder, _, files in tf.io.gfile.walk(root)
        for name in files
    )
    return sorted(p for p in found if tf.io.gfile.exists(p))


def fresh_ram_root(name: str) -> str:
    """``ram://<name>``, emptied: a folder no earlier test wrote into."""
    root = f"{SCHEME}://{name}"
    if tf.io.gfile.exists(root):
        tf.io.gfile.rmtree(root)
    tf.io.gfile.makedirs(root)
    return root


def copy_tree(src: str, dst: str) -> None:
    """Copies every file under ``src`` (a ``tf.io.gfile`` path) to the same place under ``dst``."""
    src = src.rstrip("/")
    for folder, _, files in tf.io.gfile.walk(src):
        for name in files:
            path = f"{folder.rstrip('/')}/{name}"
            target = dst.rstrip("/") + path[len(src) :]
            tf.io.gfile.makedirs(target.rpartition("/")[0])
            tf.io.gfile.copy(path, target, overwrite=True)
    if not tf.io.gfile.exists(dst):
        tf.io.gfile.makedirs(dst)


@contextlib.contextmanager
def _empty_local_dirs():
    """Runs the body in an empty working directory with an empty temp folder; yields both."""
    cwd, saved_tempdir, saved_env = os.getcwd(), tempfile.tempdir, os.environ.get("TMPDIR")
    with tempfile.TemporaryDirectory() as base:
        work, tmp = os.path.join(base, "cwd"), os.path.join(base, "tmp")
        os.makedirs(work)
        os.makedirs(tmp)
        os.chdir(work)
        tempfile.tempdir, os.environ["TMPDIR"] = tmp, tmp
        try:
            yield work, tmp
        finally:
            os.chdir(cwd)
            tempfile.tempdir = saved_tempdir
            if saved_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_env


def _local_files(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def check_writes_through_fileio(
    component: Any,
    inputs: Mapping[str, Any] | None = None,
    exec_properties: Mapping[str, Any] | None = None,
    beam_pipeline_args: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Runs ``component``'s executor once with every input and output on ``ram://``.

    Each input (an artifact or a local URI, as ``run_executor`` takes them) is copied to a
    fresh ``ram://`` folder first; the run happens in an empty working directory with an
    empty temp folder. An executor that writes with ``open``/``os`` instead of
    ``tfx.dsl.io.fileio`` either fails here or leaves a local file (a ``ram:`` folder in the
    working directory, typically), and that is an ``AssertionError`` naming the files; so is
    a run that wrote nothing to any output. Returns ``{"outputs": {key: [files]}}``, the
    files each output artifact holds on ``ram://``.
    """
    from tfx import types

    from tfx_metric_learning.testing.executors import run_executor

    root = fresh_ram_root(f"fileio-check-{os.getpid()}-{id(component):x}")
    remote_inputs: dict[str, list[Any]] = {}
    for key, value in (inputs or {}).items():
        remote_inputs[key] = []
        for i, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
            uri = item.uri if isinstance(item, types.Artifact) else item
            target = f"{root}/inputs/{key}/{i}"
            copy_tree(uri, target)
            if isinstance(item, types.Artifact):
                moved = type(item)()
                moved.copy_from(item)
                moved.uri = target
                remote_inputs[key].append(moved)
            else:
                remote_inputs[key].append(target)
    with _empty_local_dirs() as (work, tmp):
        outputs = run_executor(
            component, remote_inputs, exec_properties, f"{root}/outputs", beam_pipeline_args
        )
        local = {"working directory": _local_files(work), "temp folder": _local_files(tmp)}
    written = {key: [p for a in arts for p in walk(a.uri)] for key, arts in outputs.items()}
    stray = {where: files for where, files in local.items() if files}
    if stray:
        raise AssertionError(f"the executor wrote to local disk instead of through fileio: {stray}")
    if not any(written.values()):
        raise AssertionError(f"the executor wrote no file to any output: {sorted(written)}")
    return {"outputs": written}
