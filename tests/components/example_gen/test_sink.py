"""ExampleGen's writer: chunks -> gzipped TFRecord shards, read back by TensorFlow's reader."""

import os

import apache_beam as beam
import pytest
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs

from tests.components.example_gen.helpers import run_example_gen
from tfx_metric_learning.components.example_gen import sink
from tfx_metric_learning.core import records


def _write(chunks, split_uri):
    with beam.Pipeline() as p:
        _ = p | beam.Create(chunks, reshuffle=False) | sink.WriteChunks(split_uri)
    return sorted(os.listdir(split_uri))


def _read(split_uri, names):
    return [r for name in names for r in records.iter_records(os.path.join(split_uri, name))]


def test_chunks_are_written_whole_in_shards_of_at_most_the_cap(tmp_path):
    n = sink.CHUNKS_PER_SHARD * 2 + 5
    chunks = [[f"{c}-{i}".encode() * (i + 1) for i in range(c % 7)] for c in range(n)]
    names = _write(chunks, str(tmp_path / "Split-train"))

    assert len(names) == 3  # 64 + 64 + 5 chunks, nothing else left (no temporary folder)
    assert all(
        name.startswith("data_tfrecord-") and name.endswith("-of-00003.gz") for name in names
    )
    back = _read(str(tmp_path / "Split-train"), names)
    assert sorted(back) == sorted(r for chunk in chunks for r in chunk)
    # a chunk's rows stay together and in order in one file
    per_file = [list(records.iter_records(str(tmp_path / "Split-train" / n))) for n in names]
    for chunk in chunks:
        if chunk:
            (holder,) = [f for f in per_file if chunk[0] in f]
            start = holder.index(chunk[0])
            assert holder[start : start + len(chunk)] == chunk


def test_files_are_gzip_at_the_fast_level(tmp_path):
    names = _write([[b"x" * 1000] * 50], str(tmp_path / "s"))
    with open(tmp_path / "s" / names[0], "rb") as f:
        header = f.read(10)
    assert header[:2] == b"\x1f\x8b"  # gzip
    assert sink.GZIP_LEVEL == 1 and header[8] == 4  # XFL 4: "compressor used fastest algorithm"


def test_a_split_without_rows_is_one_empty_shard(tmp_path):
    names = _write([], str(tmp_path / "s"))
    assert len(names) == 1
    assert _read(str(tmp_path / "s"), names) == []


def test_the_executor_writes_splits_and_formats_as_tfx_does(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    lines = ["a,b,label"] + [f"{i},{i % 3},c{i % 4}" for i in range(400)]
    (data / "d.csv").write_text("\n".join(lines) + "\n")
    artifact = standard_artifacts.Examples()
    report = run_example_gen(
        str(data), "*.csv", str(tmp_path / "out"), artifact, label_column="label"
    )

    assert examples_utils.get_payload_format_string(artifact) == "FORMAT_TF_EXAMPLE"
    assert artifact.get_string_custom_property("file_format") == "tfrecords_gzip"
    for split, info in report["splits"].items():
        folder = tmp_path / "out" / f"Split-{split}"
        assert len(_read(str(folder), sorted(os.listdir(folder)))) == info["rows"] > 0


@pytest.mark.parametrize(
    "key, value",
    [
        (standard_component_specs.OUTPUT_DATA_FORMAT_KEY, example_gen_pb2.FORMAT_PARQUET),
        (standard_component_specs.OUTPUT_FILE_FORMAT_KEY, 9),
    ],
)
def test_other_output_formats_are_refused(tmp_path, key, value):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,label\n1,x\n2,y\n")
    with pytest.raises(ValueError, match=key):
        run_example_gen(
            str(data), "*.csv", str(tmp_path / "out"), overrides={key: value}, label_column="label"
        )
    assert not any((tmp_path / "out").iterdir())  # the launcher's empty output folder only
