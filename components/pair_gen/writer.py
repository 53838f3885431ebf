"""Deterministic TFRecord output: the same records give byte-identical files on any runner.

Records are keyed by a stable sort key, assigned to a fixed number of shards, sorted within
each shard and written by one writer per shard, so neither bundle order nor parallelism can
change the files. Each shard is held (sorted) by one worker while it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
import tensorflow as tf


def shard_path(prefix: str, index: int, count: int) -> str:
    """``<prefix>-00003-of-00008.gz``."""
    return f"{prefix}-{index:05d}-of-{count:05d}.gz"


def _write_shard(element: tuple[int, list[tuple[Any, bytes]]], prefix: str, count: int) -> str:
    index, records = element
    path = shard_path(prefix, index, count)
    tf.io.gfile.makedirs(tf.io.gfile.join(*path.rsplit("/", 1)[:-1]) or ".")
    temp = f"{path}.incomplete"  # a retried bundle rewrites the same bytes; never half a file
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(temp, options) as writer:
        for _, record in sorted(records, key=lambda r: r[0]):
            writer.write(record)
    tf.io.gfile.rename(temp, path, overwrite=True)
    return path


class WriteSortedShards(beam.PTransform):
    """``(sort_key, serialized)`` -> gzipped TFRecord shards, each sorted by ``sort_key``."""

    def __init__(self, prefix: str, num_shards: int, shard_of: Callable[[Any], int]):
        super().__init__()
        self._prefix = prefix
        self._count = num_shards
        self._shard_of = shard_of

    def expand(self, records):
        shard_of, count = self._shard_of, self._count
        return (
            records
            | "Shard" >> beam.Map(lambda kv: (shard_of(kv[0]) % count, kv))
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write_shard, self._prefix, count)
        )
