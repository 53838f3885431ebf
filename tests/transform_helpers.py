"""Runs the real preprocessing_fn with TFT's Beam implementation (the kit's) on in-memory rows.

Writes what Transform would: a transform graph folder and transformed examples as gzipped
TFRecords in ``Split-<name>`` folders, so components downstream of Transform can be tested
without the orchestrator.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from tfx_metric_learning.testing import preprocessing as kit_preprocessing
from tfx_metric_learning.trainer_module import preprocessing


def analyze_and_transform(rows, feature_names, transform_dir, label="label", **settings):
    """``rows``: dicts of raw values (``feature_names`` and ``label``). Returns the transformed
    rows (dicts of numpy), through the testing kit with the built-in ``preprocessing_fn``.

    ``settings``: ``TransformSettings`` fields, passed in the custom_config as the pipeline does.
    """
    assert sorted(feature_names) == sorted(k for k in rows[0] if k != label)
    return kit_preprocessing.analyze_and_transform(
        preprocessing.preprocessing_fn, rows, transform_dir, label, settings
    )


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
