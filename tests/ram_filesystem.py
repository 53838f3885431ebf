"""A Beam ``FileSystem`` for TensorFlow's in-memory ``ram://`` scheme (test stand-in for a bucket).

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

import io

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
