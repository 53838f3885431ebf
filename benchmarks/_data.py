"""Synthetic splits for the benchmarks, written the way ExampleGen writes them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

PER_FILE = 250_000


def write_gzip_tfrecords(
    folder: str, rows: int, make: Callable[[int], Iterable[bytes]], per_file: int = PER_FILE
) -> None:
    """``rows`` serialized examples in GZIP TFRecord files of ``per_file``; ``make(n)`` gives n."""
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    files = -(-rows // per_file)
    for f, start in enumerate(range(0, rows, per_file)):
        path = os.path.join(folder, f"data_tfrecord-{f:05d}-of-{files:05d}.gz")
        with tf.io.TFRecordWriter(path, options) as w:
            for serialized in make(min(per_file, rows - start)):
                w.write(serialized)
