"""The entrypoint reads the ExecutorInput of either launcher as TFX's runner needs it."""

import pytest

from tfx_metric_learning.kubeflow import entrypoint

MODEL_TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
INPUTS_SPEC = {"artifacts": {"model": {"artifactType": MODEL_TYPE}}}


def _input(uri, artifact_type, out_uri="gs://b/pipeline-root/p/run/Task/x/out"):
    return {
        "inputs": {
            "artifacts": {
                "model": {"artifacts": [{"name": "42", "type": artifact_type, "uri": uri}]}
            }
        },
        "outputs": {
            "artifacts": {
                "out": {"artifacts": [{"name": "out", "type": MODEL_TYPE, "uri": out_uri}]}
            },
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }


@pytest.mark.parametrize("empty", [{"instanceSchema": ""}, {}, None])
def test_an_untyped_upstream_artifact_gets_its_declared_type(empty):
    # what the open-source driver passes (metadata/client.go: OutputArtifact{Schema: ""})
    out, mapped = entrypoint.normalise(_input("gs://b/m", empty), INPUTS_SPEC, reads=lambda u: True)
    artifact = out["inputs"]["artifacts"]["model"]["artifacts"][0]
    assert artifact["type"] == MODEL_TYPE and artifact["name"] == "42"
    assert artifact["uri"] == "gs://b/m" and mapped == {}


def test_a_typed_artifact_and_a_readable_uri_are_left_as_they_are():
    given = _input("gs://b/m", {"schemaTitle": "tfx.Model"})
    out, mapped = entrypoint.normalise(given, {}, reads=lambda u: True)
    assert out == given and mapped == {}


def test_an_untyped_artifact_with_no_declared_type_is_named():
    with pytest.raises(ValueError, match="input artifact 'model' arrived without a type"):
        entrypoint.normalise(_input("gs://b/m", {"instanceSchema": ""}), {})


def test_uris_tensorflow_cannot_open_become_the_launchers_local_paths_and_back():
    given = _input("minio://mlpipeline/v2/a/model", MODEL_TYPE, "minio://mlpipeline/v2/b/out")
    out, mapped = entrypoint.normalise(given, INPUTS_SPEC, reads=lambda u: False)
    model = out["inputs"]["artifacts"]["model"]["artifacts"][0]
    output = out["outputs"]["artifacts"]["out"]["artifacts"][0]
    # component/launcher_v2.go LocalPathForURI: minio://b/k -> /minio/b/k
    assert model["uri"] == "/minio/mlpipeline/v2/a/model"
    assert output["uri"] == "/minio/mlpipeline/v2/b/out"
    executor_output = {"artifacts": {"out": {"artifacts": [dict(output, metadata={"a": 1.0})]}}}
    restored = entrypoint.restore_uris(executor_output, mapped)
    assert restored["artifacts"]["out"]["artifacts"][0]["uri"] == "minio://mlpipeline/v2/b/out"


def test_tensorflow_here_reads_gs_but_not_minio_or_s3():
    assert entrypoint.tensorflow_reads("gs://b/k") and entrypoint.tensorflow_reads("/local/path")
    assert not entrypoint.tensorflow_reads("minio://b/k")
    assert not entrypoint.tensorflow_reads("s3://b/k")
