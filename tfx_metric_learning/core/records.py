"""Reading TFRecord files: the one place that decides a file's compression.

A file is gzip-compressed exactly when its name ends in ``.gz`` (case-insensitive): what TFX
writes (``*.gz`` from ExampleGen, Transform and PairGen) and what ExampleGen accepts from users.
Records are read with TensorFlow's C++ record reader (``tf_record_iterator``: 100,000
gzipped records in 0.12 s here, where iterating a ``tf.data.TFRecordDataset`` from Python took
10 s), local or on any filesystem TensorFlow knows; a corrupt or truncated file raises
``tf.errors.DataLossError``.
"""

from __future__ import annotations

from collections.abc import Iterator

import tensorflow as tf


def is_gzip(path: str) -> bool:
    """Whether ``path`` is gzip-compressed: its name ends in ``.gz`` (as Beam's readers decide)."""
    return path.lower().endswith(".gz")


def compression_of(path: str) -> str:
    """``"GZIP"`` for a ``.gz`` file name, else ``""`` (TensorFlow's compression_type)."""
    return "GZIP" if is_gzip(path) else ""


def iter_records(path: str) -> Iterator[bytes]:
    """The serialized records of one TFRecord file, in order."""
    options = tf.io.TFRecordOptions(compression_type=compression_of(path))
    yield from tf.compat.v1.io.tf_record_iterator(path, options)


def iter_batches(path: str, size: int) -> Iterator[list[bytes]]:
    """The records of ``path`` in lists of at most ``size``."""
    batch: list[bytes] = []
    for record in iter_records(path):
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
