"""The Trainer's input: PairGen's examples as the batches its loss consumes.

``make_dataset`` reads a split through TFX's data accessor (or, when it fits in
``memory_budget``, into memory once: ``read_into_memory``, ``in_memory_batches``), maps each
row to the model's inputs for the loss's mode (``keys.VECTOR_KEYS``) and its label to an int64
key (``label_key``); ``shard_across_workers`` shards by element when there are fewer files
than workers. ``load_schema`` and ``feature_dim`` read PairGen's schema and Transform's output.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.trainer import fn_args_utils
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from tfx_metric_learning.core import keys
from tfx_metric_learning.core import records as tfrecords
from tfx_metric_learning.trainer_module import preprocessing
from tfx_metric_learning.trainer_module.distribution import workers_in
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.settings import TrainingSettings

LABEL_HASH_BUCKETS = 2**62

READ_BATCH = 4096  # rows per batch when a split is read into memory


def label_key(labels: tf.Tensor) -> tf.Tensor:
    """An int64 id per label string, equal iff the strings are equal (up to a 2^-62 collision).

    Online mining only compares labels, so classes never seen in training keep their identity.
    """
    return tf.strings.to_hash_bucket_fast(tf.reshape(labels, [-1]), LABEL_HASH_BUCKETS)


def _to_model_inputs(spec: registry.LossSpec):
    mode = spec.input_mode
    if mode in keys.VECTOR_KEYS:
        vectors = keys.VECTOR_KEYS[mode]

        def offline(batch):
            inputs = {k: batch[k] for k in vectors}
            if mode == "pairs":
                return inputs, tf.reshape(batch[keys.SIMILAR], [-1])
            return inputs, tf.zeros_like(batch[vectors[0]][:, 0])

        return offline
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        return lambda batch: (
            batch[keys.FEATURES],
            tf.reshape(batch[keys.LABEL_ID], [-1]),
        )
    return lambda batch: (
        batch[keys.FEATURES],
        label_key(batch[keys.LABEL]),
    )


def make_dataset(
    file_pattern: list[str],
    data_accessor: fn_args_utils.DataAccessor,
    schema: Any,
    spec: registry.LossSpec,
    batch_size: int,
    seed: int,
    in_order: bool = False,
    rows: int = 0,
    memory_budget: int = 0,
) -> tf.data.Dataset:
    """Repeated, fixed-size batches ``(inputs, labels)`` for the loss ``spec``.

    Shuffled, unless ``in_order``: then the rows are read as written, so that each batch is
    one of PairGen's P x K groups (``batch_size`` = P x K). Rows of a class the label
    vocabulary has never seen are dropped for losses that take class ids.

    When the split's ``rows`` take at most ``memory_budget`` bytes as model inputs, they are
    read and parsed once into memory (``read_into_memory``) and batched from there
    (``in_memory_batches``: a seeded permutation per pass over the rows); otherwise they
    stream from the files through TFX's ``DataAccessor`` (tfxio reads, a seeded shuffle
    buffer, parsing every epoch). Both streams are reproducible for a seed, but they differ
    from each other.
    """
    to_inputs = _to_model_inputs(spec)
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            shuffle=not in_order,
            sloppy_ordering=False,
            shuffle_seed=seed,
            num_epochs=None,
            drop_final_batch=True,
        ),
        schema,
    )
    streamed = dataset.map(to_inputs)
    if rows and rows * row_bytes(streamed.element_spec) <= memory_budget:
        columns = read_into_memory(file_pattern, schema, spec)
        kept = int(tf.nest.flatten(columns)[0].shape[0])
        if kept < batch_size:
            raise ValueError(
                f"the train split has {kept} rows {spec.name!r} can train on (of classes in the "
                f"label vocabulary), fewer than one batch of {batch_size}"
            )
        return in_memory_batches(columns, batch_size, seed, shuffle=not in_order)
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        # rows of classes the label vocabulary has never seen have no class id
        dataset = (
            dataset.unbatch()
            .filter(lambda row: tf.reduce_all(row[keys.LABEL_ID] >= 0))
            .batch(batch_size, drop_remainder=True)
        )
    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def row_bytes(element_spec: Any) -> float:
    """Bytes one row takes in batches of ``element_spec``; inf when a shape is not fixed.

    Each tensor's shape after the batch dimension times its dtype's size, summed.
    """
    specs = tf.nest.flatten(element_spec)
    if not all(s.shape[1:].is_fully_defined() for s in specs):
        return math.inf
    return sum(int(np.prod(s.shape[1:])) * s.dtype.size for s in specs)


def read_into_memory(file_pattern: list[str], schema: Any, spec: registry.LossSpec) -> Any:
    """Every row of the split as the loss's ``(inputs, labels)``, one tensor per input.

    One pass over the files in name order (``records.parsed_batches``, ``READ_BATCH`` rows at
    a time), each row parsed with the schema's feature spec (``schema_as_feature_spec``, the
    spec TFX's ``DataAccessor`` parses with: the same tensors, ten times faster); rows
    without a class id are dropped for losses that take class ids. The rows' order does not
    depend on the machine (tfx-bsl's reader interleaves as many files as there are CPUs).
    """
    files = tfrecords.matching_files(file_pattern)
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    dataset = tfrecords.parsed_batches(files, feature_spec, READ_BATCH)
    parts = list(dataset.map(_to_model_inputs(spec), num_parallel_calls=tf.data.AUTOTUNE))
    columns = tf.nest.map_structure(lambda *p: tf.concat(p, axis=0), *parts)
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        known = columns[1] >= 0
        columns = tf.nest.map_structure(lambda c: tf.boolean_mask(c, known), columns)
    return columns


def in_memory_batches(columns: Any, batch_size: int, seed: int, shuffle: bool) -> tf.data.Dataset:
    """Batches of the in-memory rows ``columns`` (tensors of equal first dimension N), forever.

    Pass ``p`` over the rows takes them in the order of a permutation drawn with the
    stateless seed ``(seed, p)`` (``in order`` when not ``shuffle``), cut into ``N //
    batch_size`` batches; the last ``N mod batch_size`` rows of each permutation wait for
    the next pass. Each batch is one ``tf.gather`` per tensor, as Keras batches numpy
    arrays, so nothing is parsed after the read and the stream is the same on every run of
    a seed (a resumed training skips batches of it).
    """
    n = int(tf.nest.flatten(columns)[0].shape[0])
    steps = n // batch_size

    def one_pass(p: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(seed, tf.int64), p])
            )
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: steps * batch_size], [steps, batch_size])
        )

    return (
        tf.data.Dataset.counter()
        .flat_map(one_pass)
        .map(
            lambda rows: tf.nest.map_structure(lambda c: tf.gather(c, rows), columns),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def memory_budget(training: TrainingSettings) -> int:
    """Bytes the train split may take in memory (``in_memory_mb``); 0 across several workers.

    Each worker of a MultiWorkerMirroredStrategy cluster streams its shard of the files
    instead: a copy of the whole split per worker is what the budget is not meant to buy.
    """
    if workers_in(os.environ.get("TF_CONFIG")) > 1:
        return 0
    return training.in_memory_mb * 2**20


def shard_across_workers(dataset: tf.data.Dataset, file_patterns: list[str]) -> tf.data.Dataset:
    """``dataset`` with the sharding several workers can do on ``file_patterns``' files.

    MultiWorkerMirroredStrategy shards a file-based dataset by file, and fails when there are
    fewer files than workers ("Could not apply FILE based sharding"); a small split written as
    one file is then sharded by element (each worker reads every file and keeps its share of
    the batches). With one worker nothing changes.
    """
    workers = workers_in(os.environ.get("TF_CONFIG"))
    if workers < 2:
        return dataset
    files = len(tfrecords.matching_files(file_patterns))
    if files >= workers:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    logging.info("%d train file(s) for %d workers: sharded by element", files, workers)
    return dataset.with_options(options)


def feature_dim(tft_output: tft.TFTransformOutput) -> int:
    """F, the width of the transformed feature vector the encoder reads."""
    return int(tft_output.transformed_feature_spec()[keys.FEATURES].shape[0])


def feature_names(tft_output: tft.TFTransformOutput) -> list[str]:
    """The raw features in the order of the transformed feature vector (``preprocessing``)."""
    spec = tft_output.raw_feature_spec()
    return preprocessing.feature_names(list(spec), preprocessing.raw_label_column(spec))


def load_schema(path: str) -> schema_pb2.Schema:
    """The schema proto in the text file ``path`` (PairGen's output schema)."""
    return io_utils.parse_pbtxt_file(path, schema_pb2.Schema())
