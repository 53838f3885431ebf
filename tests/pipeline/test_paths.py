"""Every path a command reads or writes is checked before it runs, and nothing is created."""

import os

from tfx_metric_learning.pipeline import paths


def test_outputs_that_cannot_be_written_are_named_with_their_flag(tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    found = paths.problems(
        inputs={"--data": "foo://bucket/d.csv"},
        output_files={"--summary-json": str(a_file / "s.json"), "--markdown": str(tmp_path)},
        output_folders={"--serving-dir": str(a_file), "--pipeline-root": str(tmp_path / "a/b")},
        schema_inputs={"--schema": str(a_file / "schema.pbtxt")},
    )
    assert len(found) == 5, found
    assert found[0].startswith("--data foo://bucket/d.csv: no filesystem for foo://")
    assert "file://" in found[0]  # the schemes there are, named
    assert (
        found[1] == f"--summary-json {a_file / 's.json'}: {a_file} is a file, so nothing "
        "can be created under it"
    )
    assert found[2] == f"--markdown {tmp_path} is a folder; a file is written there"
    assert found[3] == f"--serving-dir {a_file} is a file; a folder is written there"
    assert found[4] == f"--schema {a_file / 'schema.pbtxt'}: {a_file} is a file, so nothing " + (
        "can be created under it"
    )
    assert not (tmp_path / "a").exists()  # the pipeline root's folders are not created


def test_writable_paths_remote_uris_and_unused_flags_pass(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "a" type: FLOAT }\n')
    # a schema file that does not exist yet is one the run writes
    assert paths.problems({}, {}, {}, {"--schema": str(tmp_path / "first" / "s.pbtxt")}) == []
    assert (
        paths.problems(
            inputs={"--data": "gs://bucket/data", "--other": ""},
            output_files={"--summary-json": str(tmp_path / "new" / "s.json"), "--markdown": ""},
            output_folders={"--serving-dir": str(tmp_path), "--pipeline-root": "gs://b/root"},
            schema_inputs={"--schema": str(schema)},
        )
        == []
    )
    assert os.listdir(tmp_path) == ["schema.pbtxt"]
