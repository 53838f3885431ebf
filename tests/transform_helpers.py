"""Runs the real preprocessing_fn with TFT's Beam implementation on in-memory rows.

Writes what Transform would: a transform graph folder and transformed examples as gzipped
TFRecords in ``Split-<name>`` folders, so components downstream of Transform can be tested
without the orchestrator.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from tfx_metric_learning.trainer_module import preprocessing


def raw_feature_spec(feature_names, label="label"):
    spec = {n: tf.io.FixedLenFeature([1], tf.float32) for n in feature_names}
    spec[label] = tf.io.FixedLenFeature([1], tf.string)
    return spec


def analyze_and_transform(rows, feature_names, transform_dir, label="label", **settings):
    """``rows``: dicts of raw values. Returns the transformed rows (dicts of numpy).

    ``settings``: ``TransformSettings`` fields, passed in the custom_config as the pipeline does.
    """
    spec = raw_feature_spec(feature_names, label)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [
        {n: [float(r[n])] for n in feature_names} | {label: [str(r[label]).encode()]} for r in rows
    ]
    fn = functools.partial(
        preprocessing.preprocessing_fn, custom_config={"label_column": label, **settings}
    )
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (
            instances,
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    # the raw schema, as TFX's Transform writes it beside the graph
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, "metadata"))
    return transformed


def to_example(row) -> bytes:
    feature = {
        "features": tf.train.Feature(
            float_list=tf.train.FloatList(value=np.asarray(row["features"]).ravel())
        ),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["label"]])),
        "label_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row["label_id"])])),
        "missing_count": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[int(row["missing_count"])])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_splits(out_dir, splits):
    """``splits``: name -> transformed rows. Writes ``Split-<name>/data.gz``."""
    for name, rows in splits.items():
        folder = os.path.join(out_dir, f"Split-{name}")
        os.makedirs(folder, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options) as w:
            for row in rows:
                w.write(to_example(row))


def transform_output(transform_dir) -> tft.TFTransformOutput:
    return tft.TFTransformOutput(transform_dir)
