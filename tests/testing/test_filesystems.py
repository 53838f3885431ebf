"""check_writes_through_fileio names an executor that writes to local disk; run_executor
refuses calls its spec does not allow; the ML Metadata fixture is a real store."""

import json
import os

import pytest
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.testing import ExecutorRunError, check_writes_through_fileio, run_executor


class _Spec(ComponentSpec):
    PARAMETERS = {"use_open": ExecutionParameter(type=int)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "schema": ChannelParameter(type=standard_artifacts.Schema, optional=True),
    }
    OUTPUTS = {"out": ChannelParameter(type=standard_artifacts.ExampleStatistics)}


class _Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        files = fileio.listdir(input_dict["examples"][0].uri)
        files += [f for a in input_dict.get("schema", []) for f in fileio.listdir(a.uri)]
        path = output_dict["out"][0].uri + "/listing.json"
        if exec_properties["use_open"]:  # the mistake: a local write
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                json.dump(files, f)
        else:
            with fileio.open(path, "w") as f:
                f.write(json.dumps(files))


class _Lister(base_component.BaseComponent):
    SPEC_CLASS = _Spec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_Executor)

    def __init__(self, use_open):
        super().__init__(
            spec=_Spec(
                use_open=use_open,
                examples=channel.Channel(type=standard_artifacts.Examples),
                out=channel.Channel(type=standard_artifacts.ExampleStatistics),
            )
        )


@pytest.fixture
def examples_dir(tmp_path):
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-train" / "data.gz").write_bytes(b"x")
    return str(tmp_path)


def test_an_executor_writing_through_fileio_passes(examples_dir):
    written = check_writes_through_fileio(_Lister(0), {"examples": examples_dir})
    assert [p.rsplit("/", 1)[1] for p in written["outputs"]["out"]] == ["listing.json"]


def test_an_executor_writing_with_open_is_named(examples_dir):
    with pytest.raises(AssertionError, match="wrote to local disk.*ram:"):
        check_writes_through_fileio(_Lister(1), {"examples": examples_dir})


def test_run_executor_refuses_what_the_spec_does_not_declare(examples_dir, tmp_path):
    with pytest.raises(ExecutorRunError, match="no input 'data'; valid: examples"):
        run_executor(_Lister(0), {"data": examples_dir})
    with pytest.raises(ExecutorRunError, match="does not exist"):
        run_executor(_Lister(0), {"examples": str(tmp_path / "nowhere")})
    with pytest.raises(ExecutorRunError, match="no output 'stats'; valid: out"):
        run_executor(_Lister(0), {"examples": examples_dir}, outputs={"stats": str(tmp_path)})
    with pytest.raises(ExecutorRunError, match="output 'out' takes ExampleStatistics"):
        run_executor(
            _Lister(0), {"examples": examples_dir}, outputs={"out": standard_artifacts.Model()}
        )
    with pytest.raises(ExecutorRunError, match="no execution property 'span'"):
        run_executor(_Lister(0), {"examples": examples_dir}, {"span": 3})
    (artifact,) = run_executor(_Lister(0), {"examples": examples_dir})["out"]
    assert fileio.exists(artifact.uri + "/listing.json")


def test_run_executor_uses_given_outputs_and_driver_properties(examples_dir, tmp_path):
    given = standard_artifacts.ExampleStatistics()
    given.uri = str(tmp_path / "mine")
    outputs = run_executor(
        _Lister(0),
        {"examples": examples_dir},
        outputs={"out": given},
        driver_properties={"span": 3},
    )
    assert outputs["out"] == [given]
    assert fileio.exists(str(tmp_path / "mine" / "listing.json"))


def test_run_executor_takes_a_uri_for_an_input_type_without_properties(examples_dir, tmp_path):
    # Schema declares no properties (PROPERTIES is None): only Examples get split names.
    # (examples_dir is tmp_path, so it lists the schema folder too)
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schema.pbtxt").write_text("")
    (artifact,) = run_executor(
        _Lister(0), {"examples": examples_dir, "schema": str(tmp_path / "schema")}
    )["out"]
    with fileio.open(artifact.uri + "/listing.json") as f:
        assert sorted(json.loads(f.read())) == ["Split-train", "schema", "schema.pbtxt"]


def test_the_metadata_fixture_is_a_real_store(mlmd_store):
    type_id = mlmd_store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Thing"))
    (artifact_id,) = mlmd_store.put_artifacts(
        [metadata_store_pb2.Artifact(type_id=type_id, uri="u")]
    )
    assert mlmd_store.get_artifacts_by_id([artifact_id])[0].uri == "u"
