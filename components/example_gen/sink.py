"""Writing a split's serialized tf.Examples: gzipped TFRecord shards, a chunk of rows at a time.

What ExampleGen writes is what TFX's ``WriteSplit`` wrote (``<split dir>/data_tfrecord-SSSSS-of-
NNNNN.gz``, GZIP TFRecords of serialized tf.Examples, read by every TFX component), with three
differences, each measured on 200,000 rows x 64 features (``benchmarks/pipeline_scale.py``):

- no ``Reshuffle`` of every row before writing (TFX's own TODO says it should be optional):
  a shuffle of one element per row through the runner, 7.4 s of 33 s. Within a file the rows
  keep the order of the input; nothing downstream depends on it (PairGen samples by seeded
  hashes, the others aggregate);
- gzip level ``GZIP_LEVEL`` (1) instead of zlib's default 6: 1.2 s instead of 5.2 s for
  100,000 of these records, files about 20% larger;
- a Beam element is a list of serialized rows (a chunk, up to ``transforms.BATCH_ROWS``), written
  by TensorFlow's C++ ``TFRecordWriter`` (framing, CRCs and compression outside Python).

Files are written by Beam's ``FileBasedSink``: each bundle into a temporary file, renamed to its
final name once every bundle is done, so a retried bundle or a killed run leaves no partial
shard behind. A shard holds at most ``CHUNKS_PER_SHARD`` chunks, so a large split is several
files that distributed readers open in parallel. Paths go through TensorFlow's file systems
(local, ``gs://``, ...) for the bytes and Beam's for temporary folders and renames, as
PairGen's writer does.

Written by hand because neither TFX nor Beam writes TFRecords from batches with a chosen
compression level (``beam.io.WriteToTFRecord`` takes one record per element and Beam's gzip
level is fixed).
"""

from __future__ import annotations

import os

import apache_beam as beam
import tensorflow as tf
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from tfx.components.example_gen import write_split

FILE_SUFFIX = ".gz"
GZIP_LEVEL = 1
# chunks per output file: at most 64 x 2,048 = 131,072 rows
CHUNKS_PER_SHARD = 64


class ChunkSink(filebasedsink.FileBasedSink):
    """GZIP TFRecord shards under ``prefix``; an element is a list of serialized records."""

    def __init__(self, prefix: str):
        super().__init__(
            prefix,
            coder=None,
            file_name_suffix=FILE_SUFFIX,
            compression_type=CompressionTypes.UNCOMPRESSED,
            max_records_per_shard=CHUNKS_PER_SHARD,
        )

    def open(self, temp_path: str) -> tf.io.TFRecordWriter:
        options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=GZIP_LEVEL)
        return tf.io.TFRecordWriter(temp_path, options)

    def write_record(self, file_handle: tf.io.TFRecordWriter, value: list[bytes]) -> None:
        for record in value:
            file_handle.write(record)


def split_prefix(split_uri: str) -> str:
    """The shards' path prefix in a split's folder."""
    return os.path.join(split_uri, write_split.DEFAULT_TF_RECORD_FILE_NAME)


class WriteChunks(beam.PTransform):
    """A PCollection of chunks (lists of serialized records) -> the shards under ``split_uri``."""

    def __init__(self, split_uri: str):
        super().__init__()
        self._prefix = split_prefix(split_uri)

    def expand(self, chunks):
        return chunks | beam.io.Write(ChunkSink(self._prefix))
