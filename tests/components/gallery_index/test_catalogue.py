"""Rows files for lookups and catalogues: CSV and TFRecord read alike; what a catalogue needs."""

import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.gallery_index import catalogue

CSV = "id,x,y,label,note\nitem-a,1.0,0.0,a,first\nitem-b,,1.0,b,second\nitem-c,0.5,0.5,,third\n"


def _tfrecord(path):
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(path), options) as w:
        for item, x, y, label in (
            ("item-a", 1.0, 0.0, "a"),
            ("item-b", None, 1.0, "b"),
            ("item-c", 0.5, 0.5, None),
        ):
            ex = tf.train.Example()
            ex.features.feature["id"].bytes_list.value.append(item.encode())
            if x is not None:  # absent: missing, as an empty CSV cell is
                ex.features.feature["x"].float_list.value.append(x)
            ex.features.feature["y"].float_list.value.append(y)
            if label is not None:
                ex.features.feature["label"].bytes_list.value.append(label.encode())
            w.write(ex.SerializeToString())
    return str(path)


def test_csv_and_tfrecord_files_read_as_the_same_table(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    from_csv = catalogue.read_table(str(tmp_path / "c.csv"), id_column="id")
    from_records = catalogue.read_table(_tfrecord(tmp_path / "c.tfrecord.gz"), id_column="id")
    for table in (from_csv, from_records):
        assert table.ids == ["item-a", "item-b", "item-c"]
        assert table.labels.tolist() == ["a", "b", ""]
        np.testing.assert_array_equal(table.features["x"], [1.0, np.nan, 0.5])
        np.testing.assert_array_equal(table.features["y"], [0.0, 1.0, 0.5])
    assert sorted(from_csv.features) == ["note", "x", "y"]  # text cells are NaN features
    checked = catalogue.check_catalogue(from_csv, ["x", "y"])
    assert sorted(checked.features) == ["x", "y"] and checked.ignored == ["note"]


def test_without_an_id_column_rows_are_numbered_by_line(tmp_path):
    (tmp_path / "c.csv").write_text("x,y\n1,2\n\n3,4\n")
    assert catalogue.read_table(str(tmp_path / "c.csv")).ids == ["2", "4"]


def test_the_id_column_is_checked_in_the_header_and_in_the_records(tmp_path):
    (tmp_path / "c.csv").write_text(CSV)
    with pytest.raises(DataError, match="has no id column 'sku'"):
        catalogue.check_header(str(tmp_path / "c.csv"), "sku")
    records = _tfrecord(tmp_path / "c.tfrecord.gz")
    catalogue.check_header(records, "id")
    with pytest.raises(DataError, match="has no id column 'sku'"):
        catalogue.check_header(records, "sku")
