import gzip

import pytest
import tensorflow as tf

from tfx_metric_learning.components.example_gen import files


def test_gzip_csv_is_read_like_plain(tmp_path):
    plain = tmp_path / "d.csv"
    plain.write_text("a,b,label\n1,2,x\n3,4,y\n")
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (str(plain), str(packed)):
        header = files.read_header(path)
        assert header.columns == ["a", "b", "label"] and header.lines == 1
        assert list(files.iter_csv_rows(path, "utf-8", header)) == [
            ["1", "2", "x"],
            ["3", "4", "y"],
        ]


def test_delimiter_is_detected_or_taken_from_the_setting(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;label\n1,5;2;x\n")
    header = files.read_header(str(path))
    assert header.delimiter == ";" and header.columns == ["a", "b", "label"]
    forced = files.read_header(str(path), delimiter=",")
    assert forced.columns == ["a;b;label"]
    assert "pass --delimiter ';'" in files.label_hint(forced)
    tabs = tmp_path / "t.tsv"
    tabs.write_text("a\tb\tlabel\n")
    assert files.read_header(str(tabs)).delimiter == "\t"
    assert files.read_header(str(tabs), delimiter="tab").columns == ["a", "b", "label"]


def test_header_with_a_quoted_newline_spans_two_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('"width\n(cm)",label\n1,x\n2,"multi\nline"\n')
    header = files.read_header(str(path))
    assert header.columns == ["width\n(cm)", "label"] and header.lines == 2
    assert list(files.iter_csv_rows(str(path), "utf-8", header)) == [
        ["1", "x"],
        ["2", "multi\nline"],
    ]


def test_undecodable_bytes_name_file_line_and_encoding(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("a,label\n1,caf\xe9\n".encode("latin-1"))
    header = files.read_header(str(path))
    with pytest.raises(files.DataError, match=r"d.csv, line 2: byte 0xe9 .*--encoding latin-1"):
        list(files.iter_csv_rows(str(path), "utf-8", header))
    assert list(files.iter_csv_rows(str(path), "latin-1", header)) == [["1", "café"]]


def test_corrupt_tfrecord_names_the_file_and_the_good_records(tmp_path):
    path = str(tmp_path / "d.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(3):
            writer.write(tf.train.Example().SerializeToString() + bytes([i]))
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-3])
    with pytest.raises(files.DataError, match=r"d.tfrecord is not a readable .* after 2 good"):
        list(files.iter_tfrecords(path))
    open(path, "wb").write(b"not a tfrecord at all")
    with pytest.raises(files.DataError, match="after 0 good record"):
        files.tfrecord_columns(path)
