import gzip

import pytest

from tfx_metric_learning.components.example_gen import layout as layout_lib
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.settings import IngestSettings


def _counts(path: str, fast: bool = True, **settings) -> dict[str, int]:
    """``count_labels`` of one file; ``fast=False`` forces the ``csv`` module's parse."""
    ingest = IngestSettings(**settings)
    layout = layout_lib.read_layout([str(path)], ingest)
    if fast:
        return layout_lib.count_labels(layout, ingest)
    saved = layout_lib._arrow_label_counts
    layout_lib._arrow_label_counts = lambda *args: None
    try:
        return layout_lib.count_labels(layout, ingest)
    finally:
        layout_lib._arrow_label_counts = saved


def _header(path, **settings):
    ingest = IngestSettings(**settings)
    return layout_lib.read_layout([str(path)], ingest).header


# Plain files: the fast path is taken, and counts what the ``csv`` parse counts.
PLAIN = {
    "missing tokens, floats and padding": (
        "a,b,label\n1,2,x\n3,4, x \n5,6,\n7,8,NaN\n9,1, none\n1,2,3.0\n1,2,3\n",
        {},
        {"x": 2, "3.0": 1, "3": 1},
    ),
    "wrong widths and empty lines": (
        "a,b,label\n1,2,x\n\n1,2\n1,2,x,9\n1,2,y\n\n1,2,,\n1,2,y",
        {},
        {"x": 1, "y": 2},
    ),
    "CRLF endings": ("a,b,label\r\n1,2,x\r\n\r\n3,4,y\r\n5,6,y\r\n", {}, {"x": 1, "y": 2}),
    "tabs, label first": (
        "label\ta\tb\nx\t1\t2\ny\t3\t4\nx\t5\n",
        {"label_column": "label"},
        {"x": 1, "y": 1},
    ),
    "non-ASCII labels": ("a,label\n1,가\n2,가\n3,über\n4,x\n", {}, {"가": 2, "über": 1, "x": 1}),
}


@pytest.mark.parametrize("case", sorted(PLAIN))
def test_plain_files_are_counted_by_pyarrow_as_by_csv(tmp_path, monkeypatch, case):
    text, settings, expected = PLAIN[case]
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("utf-8"))
    header = _header(path, **settings)
    assert layout_lib._plain_utf8(str(path), "utf-8", header)
    assert _counts(path, fast=False, **settings) == expected
    assert _counts(path, **settings) == expected
    # chunks that cut a CRLF ending or a two- and three-byte character in two
    for size in (1, 2, 3, 5, 7):
        monkeypatch.setattr(layout_lib, "CHECK_BYTES", size)
        assert layout_lib._plain_utf8(str(path), "utf-8", header), size
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert _counts(packed, **settings) == expected


# Files ``csv`` parses otherwise than by splitting: no fast path; counted by ``csv``.
NOT_PLAIN = {
    "a quote": ('a,label\n1,"x,1"\n2,x\n', {}, {"x,1": 1, "x": 1}),
    "a quoted newline": ('a,label\n1,"multi\nline"\n2,x\n', {}, {"multi\nline": 1, "x": 1}),
    "a multi-line header": ('"a\n(cm)",label\n1,x\n', {}, {"x": 1}),
    "latin-1": ("a,label\n1,ü\n2,x\n", {"encoding": "latin-1"}, {"ü": 1, "x": 1}),
}


@pytest.mark.parametrize("case", sorted(NOT_PLAIN))
def test_other_files_are_counted_by_csv(tmp_path, case):
    text, settings, expected = NOT_PLAIN[case]
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode(settings.get("encoding", "utf-8")))
    header = _header(path, **settings)
    assert not layout_lib._plain_utf8(str(path), settings.get("encoding", "utf-8"), header)
    assert _counts(path, **settings) == expected


@pytest.mark.parametrize(
    "data", [b"a,label\n1,x\r2,y\n", b"a,label\n1,x\x002\n", b"a,label\n1,x\r"]
)
def test_a_lone_carriage_return_or_a_nul_leaves_the_fast_path(tmp_path, data):
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    assert not layout_lib._plain_utf8(str(path), "utf-8", _header(path))


def test_a_bad_byte_is_still_named_by_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,label\n1,x\n2,\xff\n")
    assert not layout_lib._plain_utf8(str(path), "utf-8", _header(path))
    with pytest.raises(DataError, match="line 3"):
        _counts(path)


def test_tfrecord_labels_are_counted_one_value_each(tmp_path):
    import tensorflow as tf

    def example(labels):
        feature = {"a": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}
        if labels is not None:
            feature["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=labels))
        return tf.train.Example(features=tf.train.Features(feature=feature))

    path = tmp_path / "d.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as out:
        for labels in ([b"x"], [b"x"], [b" y "], [b"nan"], [b"x", b"y"], None):
            out.write(example(labels).SerializeToString())
    assert _counts(path) == {"x": 2, "y": 1}
