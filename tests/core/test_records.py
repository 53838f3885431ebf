"""Reading TFRecord files: compression by name, the files of patterns, and whole splits parsed
in file order."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.core import records

SPEC = {"x": tf.io.FixedLenFeature([2], tf.float32), "id": tf.io.FixedLenFeature([], tf.int64)}


def _write(path, ids, gzip):
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    with tf.io.TFRecordWriter(str(path), options) as w:
        for i in ids:
            ex = tf.train.Example()
            ex.features.feature["x"].float_list.value.extend([i, -i])
            ex.features.feature["id"].int64_list.value.append(i)
            w.write(ex.SerializeToString())


def test_compression_is_decided_by_the_name():
    assert records.compression_of("a/part-0.GZ") == "GZIP"
    assert records.compression_of("a/part-0.tfrecord") == ""


def test_parsed_batches_read_every_file_in_turn_each_with_its_compression(tmp_path):
    files = [tmp_path / "a.gz", tmp_path / "b.tfrecord", tmp_path / "c.gz"]
    _write(files[0], range(0, 7), gzip=True)
    _write(files[1], range(7, 10), gzip=False)
    _write(files[2], range(10, 15), gzip=True)
    batches = list(records.parsed_batches([str(f) for f in files], SPEC, 4))
    assert [len(b["id"]) for b in batches] == [4, 4, 4, 3]  # batches span file ends
    ids = np.concatenate([b["id"].numpy() for b in batches])
    np.testing.assert_array_equal(ids, np.arange(15))  # file after file, rows in order
    x = np.concatenate([b["x"].numpy() for b in batches])
    np.testing.assert_array_equal(x, np.stack([ids, -ids], axis=1).astype(np.float32))


def test_parsed_batches_refuse_no_files_and_name_a_corrupt_one(tmp_path):
    with pytest.raises(ValueError, match="no files to read"):
        records.parsed_batches([], SPEC, 4)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(tf.errors.DataLossError):
        list(records.parsed_batches([str(bad)], SPEC, 4))


def test_matching_files_are_sorted_and_each_listed_once(tmp_path):
    for name in ("b-1.gz", "a-2.gz", "a-1.gz", "other.txt"):
        (tmp_path / name).write_bytes(b"")
    patterns = [str(tmp_path / "b-*"), str(tmp_path / "*.gz")]  # b-1.gz matches both
    assert records.matching_files(patterns) == [
        str(tmp_path / n) for n in ("a-1.gz", "a-2.gz", "b-1.gz")
    ]
    assert records.matching_files([str(tmp_path / "none-*")]) == []
