"""A task's process, forked from the preloaded server or a new interpreter, sees the same."""

import json
import os
import sys

import pytest

from tests.kubeflow import pods

MODULE = "tests.kubeflow.pod_check"


def _run(tmp_path, how, code=0, env=None):
    out = str(tmp_path / f"{how}.json")
    if env is None:
        env = dict(os.environ, POD_CHECK=f"set for {how}", TMPDIR=str(tmp_path))
    pods.run("check", [sys.executable, "-m", MODULE, out, str(code)], env, how)
    with open(out) as f:
        return json.load(f), out


@pytest.mark.parametrize("how", pods.HOWS)
def test_the_module_runs_as_main_with_its_arguments_environment_and_exit_handlers(tmp_path, how):
    seen, out = _run(tmp_path, how)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [out, "0"]
    assert seen["env"] == f"set for {how}"
    assert seen["tmp"] == str(tmp_path)  # the task's TMPDIR, not the server's temp folder
    # only the forked child starts with TFX's runner imported (the server's preload)
    assert seen["imported_tfx_runner"] is (how == pods.FORKED)
    with open(out + ".atexit") as f:
        assert f.read() == "ran"


@pytest.mark.parametrize("how", pods.HOWS)
def test_a_failing_task_reports_its_exit_code_and_the_end_of_its_output(tmp_path, how):
    with pytest.raises(pods.TaskFailed, match=r"task check exited with 3:\n(.|\n)*to stderr"):
        _run(tmp_path, how, code=3)


def test_the_environment_is_the_tasks_not_the_servers(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "POD_CHECK"}
    seen, _ = _run(tmp_path, pods.FORKED, env=env)
    assert seen["env"] is None


def test_an_unknown_way_is_refused():
    with pytest.raises(ValueError, match="how='pod'"):
        pods.run("check", [sys.executable, "-c", "pass"], dict(os.environ), "pod")
