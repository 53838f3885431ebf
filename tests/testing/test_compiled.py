"""check_compiled_spec: our compiled specs pass both backends' rules; a broken one is named."""

import json

import pytest

from tfx_metric_learning.pipeline import cli
from tfx_metric_learning.testing import check_compiled_spec


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = {}
    for target, extra in {
        "kfp": ["--trainer-gpus", "1"],
        "vertex": [
            "--target",
            "vertex",
            "--trainer-gpus",
            "1",
            "--trainer-accelerator",
            "NVIDIA_L4",
        ],
    }.items():
        path = tmp_path_factory.mktemp(target) / "pipeline.json"
        args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r", *extra]
        assert cli.main([*args, "--output", str(path)]) == 0
        out[target] = path
    return out


def test_compiled_specs_pass_their_backend(compiled):
    assert check_compiled_spec(str(compiled["kfp"]), "kfp")["pipelineInfo"]["name"]
    assert check_compiled_spec(str(compiled["vertex"]), "vertex")["pipelineInfo"]["name"]


def test_an_accelerator_of_the_other_backend_is_named(compiled):
    with pytest.raises(AssertionError, match="vertex: executor Trainer_executor asks for"):
        check_compiled_spec(str(compiled["kfp"]), "both")
    with pytest.raises(AssertionError, match="kfp: .*Kubernetes resource name"):
        check_compiled_spec(str(compiled["vertex"]), "kfp")


def test_an_edited_spec_breaking_a_rule_is_named(compiled, tmp_path):
    job = json.loads(compiled["kfp"].read_text())
    job["pipelineSpec"]["pipelineInfo"]["name"] = "My_Pipeline"
    del job["pipelineSpec"]["defaultPipelineRoot"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(job))
    with pytest.raises(AssertionError) as refused:
        check_compiled_spec(str(path), "vertex")
    assert "MinIO default" in str(refused.value) and "'My_Pipeline'" in str(refused.value)
    with pytest.raises(ValueError, match="target must be one of kfp, vertex"):
        check_compiled_spec(str(path), "argo")
