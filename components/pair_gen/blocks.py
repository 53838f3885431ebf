"""Spill files of PairGen: rows in blocks, requests and answers, in a temporary folder.

A *block* is at most ``block_rows`` consecutive rows of one input file. Every step holds one
block (or one block's share of requests) at a time, so memory is bounded by ``block_rows``,
never by the size of a split or a class. The exchange goes through files (any
``tf.io.gfile`` file system: local, GCS, S3, HDFS) rather than a Beam shuffle, whose
DirectRunner keeps everything in memory.

Layout under ``<tmp>/<split>/``:

- ``rows-<block>.bin``: the block's payload: float32 vectors (``dim`` each) or, for modes
  that pass rows through, the serialized rows back to back, with ``rows-<block>.len``;
- ``labels-<block>.json``: the block's labels in row order;
- ``req-<unit>.bin`` / ``.idx``: a unit's requested class-order indices, grouped by the block
  that holds them, and where each block's group starts;
- ``unit-<unit>.npz``: a unit's tuples of class-order indices;
- ``ans-<block>.bin`` / ``.idx``: a block's answers to every unit, unit after unit.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf


def _write(path: str, data: bytes) -> None:
    temp = f"{path}.incomplete"  # a retried bundle rewrites the file; never half of one
    with tf.io.gfile.GFile(temp, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(temp, path, overwrite=True)


def _read(path: str, start: int = 0, size: int = -1) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        if start:
            f.seek(start)
        return f.read(size)


class Payload:
    """What a block holds per row: a float32 vector of ``dim`` values, or serialized bytes."""

    def __init__(self, dim: int | None):
        self.dim = dim

    @property
    def is_vector(self) -> bool:
        """True for vectors, False for serialized rows."""
        return self.dim is not None

    def pack(self, items) -> tuple[bytes, np.ndarray | None]:
        """Items -> (bytes, per-item lengths or None)."""
        if self.is_vector:
            return np.ascontiguousarray(items, np.float32).tobytes(), None
        return b"".join(items), np.fromiter((len(x) for x in items), np.int64, len(items))

    def unpack(self, data: bytes, lengths: np.ndarray | None):
        """The inverse of ``pack``: a float matrix, or a list of bytes."""
        if self.is_vector:
            return np.frombuffer(data, np.float32).reshape(-1, self.dim)
        ends = np.cumsum(lengths)
        return [data[e - n : e] for e, n in zip(ends.tolist(), lengths.tolist(), strict=True)]

    def take(self, items, rows: np.ndarray):
        """The items at ``rows``."""
        return items[rows] if self.is_vector else [items[r] for r in rows.tolist()]


class Store:
    """Reads and writes one split's spill files."""

    def __init__(self, folder: str, payload: Payload):
        self.folder = folder
        self.payload = payload
        tf.io.gfile.makedirs(folder)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def write_block(self, block: str, items, labels: list[str]) -> None:
        """Saves a block's payload and labels."""
        data, lengths = self.payload.pack(items)
        if lengths is not None:
            _write(self._path(f"rows-{block}.len"), lengths.tobytes())
        _write(self._path(f"rows-{block}.bin"), data)
        _write(self._path(f"labels-{block}.json"), json.dumps(labels).encode())

    def labels(self, block: str) -> list[str]:
        """A block's labels in row order."""
        return json.loads(_read(self._path(f"labels-{block}.json")))

    def block_items(self, block: str):
        """A block's payload (float matrix or list of serialized rows)."""
        lengths = None
        if not self.payload.is_vector:
            lengths = np.frombuffer(_read(self._path(f"rows-{block}.len")), np.int64)
        return self.payload.unpack(_read(self._path(f"rows-{block}.bin")), lengths)

    def write_unit(self, unit: int, data: bytes) -> None:
        """A unit's tuples (saved arrays)."""
        _write(self._path(f"unit-{unit}.npz"), data)

    def read_unit(self, unit: int) -> bytes:
        """What ``write_unit`` saved."""
        return _read(self._path(f"unit-{unit}.npz"))

    def write_requests(self, unit: int, indices: np.ndarray, starts: np.ndarray) -> None:
        """A unit's requests, grouped by block; ``starts[b]`` where block ``b``'s begin."""
        _write(self._path(f"req-{unit}.idx"), np.asarray(starts, np.int64).tobytes())
        _write(self._path(f"req-{unit}.bin"), np.asarray(indices, np.int64).tobytes())

    def requests_for(self, unit: int, block: int) -> np.ndarray:
        """The class-order indices ``unit`` asked of ``block``."""
        starts = np.frombuffer(_read(self._path(f"req-{unit}.idx"), 8 * block, 16), np.int64)
        count = int(starts[1] - starts[0])
        if count == 0:
            return np.zeros(0, np.int64)
        return np.frombuffer(
            _read(self._path(f"req-{unit}.bin"), 8 * int(starts[0]), 8 * count), np.int64
        )

    def write_answers(self, block: int, sections: list) -> None:
        """A block's answers: one section of items per unit, in unit order."""
        data, lengths, byte_starts, item_starts = [], [], [0], [0]
        for items in sections:
            packed, item_lengths = self.payload.pack(items)
            data.append(packed)
            byte_starts.append(byte_starts[-1] + len(packed))
            item_starts.append(item_starts[-1] + len(items))
            if item_lengths is not None:
                lengths.append(item_lengths)
        index = np.stack([byte_starts, item_starts]).astype(np.int64)
        _write(self._path(f"ans-{block}.idx"), index.tobytes())
        if lengths:
            _write(self._path(f"ans-{block}.len"), np.concatenate(lengths).tobytes())
        _write(self._path(f"ans-{block}.bin"), b"".join(data))

    def answers_for(self, block: int, unit: int, units: int):
        """The items ``block`` answered to ``unit``."""
        index = np.frombuffer(_read(self._path(f"ans-{block}.idx")), np.int64).reshape(2, units + 1)
        (b0, b1), (i0, i1) = index[:, unit : unit + 2].tolist()
        lengths = np.zeros(0, np.int64)
        if not self.payload.is_vector and i1 > i0:
            lengths = np.frombuffer(
                _read(self._path(f"ans-{block}.len"), 8 * i0, 8 * (i1 - i0)), np.int64
            )
        data = _read(self._path(f"ans-{block}.bin"), b0, b1 - b0) if b1 > b0 else b""
        return self.payload.unpack(data, lengths)
