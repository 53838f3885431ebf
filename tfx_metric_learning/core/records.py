"""Reading TFRecord files: the one place that decides a file's compression.

A file is gzip-compressed exactly when its name ends in ``.gz`` (case-insensitive): what TFX
writes (``*.gz`` from ExampleGen, Transform and PairGen) and what ExampleGen accepts from users.
Records are read with TensorFlow's C++ record reader (``tf_record_iterator``: 100,000
gzipped records in 0.12 s here, where iterating a ``tf.data.TFRecordDataset`` from Python took
10 s), local or on any filesystem TensorFlow knows; a corrupt or truncated file raises
``tf.errors.DataLossError``. ``parsed_batches`` is the ``tf.data`` reader of whole splits.
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


def matching_files(patterns: list[str]) -> list[str]:
    """The files matching any of ``patterns`` (``tf.io.gfile.glob``: any filesystem), sorted."""
    return sorted({f for pattern in patterns for f in tf.io.gfile.glob(pattern)})


def parsed_batches(files: list[str], feature_spec: dict, size: int) -> tf.data.Dataset:
    """The records of ``files``, file after file, parsed ``size`` at a time.

    Each file is read with its own compression (``compression_of``); the batches are parsed by
    ``tf.io.parse_example`` with ``feature_spec``, in parallel and in order. Written by hand
    because tfx-bsl's ``TFExampleRecord.TensorFlowDataset`` (what TFX's ``DataAccessor``
    gives) interleaves the files one record at a time: one pass over the 1M-row benchmark's
    train split (560,001 rows, two gzipped files) took 20.7 s that way and 1.3 s here.
    """
    if not files:
        raise ValueError("no files to read")
    per_file = [tf.data.TFRecordDataset(f, compression_of(f)) for f in files]
    records = per_file[0]
    for more in per_file[1:]:
        records = records.concatenate(more)
    return records.batch(size).map(
        lambda batch: tf.io.parse_example(batch, feature_spec),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
