"""The local runner's Beam arguments."""

import pytest
from tfx.utils import dependency_utils

from tfx_metric_learning.pipeline import beam_policy, local_runner
from tfx_metric_learning.pipeline.config import PipelineConfig


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], [*beam_policy.DEFAULT_BEAM_ARGS, beam_policy.LOCAL_WORKERS_ARG]),
        (
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
            [
                "--runner=FnApiRunner",
                "--direct_running_mode=multi_processing",
                "--direct_num_workers=2",
                beam_policy.LOCAL_WORKERS_ARG,
            ],
        ),
        (
            ["--runner=DirectRunner"],
            [
                "--direct_running_mode=in_memory",
                "--runner=DirectRunner",
                beam_policy.LOCAL_WORKERS_ARG,
            ],
        ),
        # a remote runner, or dependencies named by the user: nothing added
        (
            ["--runner=DataflowRunner"],
            ["--direct_running_mode=in_memory", "--runner=DataflowRunner"],
        ),
        (
            ["--setup_file=./setup.py"],
            [*beam_policy.DEFAULT_BEAM_ARGS, "--setup_file=./setup.py"],
        ),
    ],
)
def test_beam_args_keep_tfx_from_packaging_itself_for_local_workers_only(given, expected):
    args = beam_policy.beam_args(PipelineConfig(beam_args=given))
    assert args == expected
    if "--runner=DataflowRunner" not in args:
        # TFX's own check (BaseBeamExecutor) then leaves the arguments as they are: no sdist
        assert dependency_utils.make_beam_dependency_flags(args) == args


@pytest.mark.parametrize(
    ("given", "added"),
    [
        ([], True),  # Beam's default runner, the DirectRunner
        (["--runner=DirectRunner", "--direct_num_workers=1"], True),
        (["--runner=DataflowRunner", "--runner=FnApiRunner"], True),  # the last one counts
        (["--runner=FnApiRunner", "--runner=DataflowRunner"], False),
        (["--runner=FnApiRunner", "--requirements_file=r.txt"], False),
        (["--sdk_container_image=mine"], False),
    ],
)
def test_with_local_dependency_adds_the_flag_to_local_runners_only(given, added):
    args = beam_policy.with_local_dependency(given)
    assert args == (given + [beam_policy.LOCAL_WORKERS_ARG] if added else given)
    if added:  # TFX's own check then builds no sdist of itself
        assert dependency_utils.make_beam_dependency_flags(args) == args


MULTI = "--direct_running_mode=multi_processing"


@pytest.fixture
def csv_dir(tmp_path):
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{i},c{i % 2}\n" for i in range(50)))
    return str(tmp_path)


def _parallel(csv_dir, **fields):
    return beam_policy.parallel_beam_args(PipelineConfig(data=csv_dir, **fields), csv_dir)


def test_small_input_stays_in_process(csv_dir, monkeypatch):
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    assert _parallel(csv_dir) == ([], "")


def test_large_input_uses_every_cpu(csv_dir, monkeypatch):
    size = beam_policy.input_bytes(PipelineConfig(data=csv_dir), csv_dir)
    assert size == len("a,label\n" + "".join(f"{i},c{i % 2}\n" for i in range(50)))
    monkeypatch.setattr(beam_policy, "PARALLEL_INPUT_BYTES", size)
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda _: {0, 1, 2})
    flags, why = _parallel(csv_dir)
    assert flags == [MULTI, "--direct_num_workers=3"]
    assert "3 worker processes" in why and "3 CPUs" in why
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda _: {0})
    assert _parallel(csv_dir) == ([], "")  # one CPU: nothing to share
    monkeypatch.setattr(beam_policy, "PARALLEL_INPUT_BYTES", size + 1)
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda _: {0, 1, 2})
    assert _parallel(csv_dir) == ([], "")


def test_beam_workers_forces_a_count_and_one_keeps_everything_in_process(csv_dir):
    flags, why = _parallel(csv_dir, beam_workers=2)
    assert flags == [MULTI, "--direct_num_workers=2"] and "--beam-workers 2" in why
    assert _parallel(csv_dir, beam_workers=1) == ([], "")


@pytest.mark.parametrize(
    "given",
    [
        ["--direct_num_workers=4"],
        ["--direct_running_mode=multi_threading"],
        ["--runner=DataflowRunner"],
    ],
)
def test_beam_arguments_that_choose_the_workers_win(csv_dir, given):
    assert _parallel(csv_dir, beam_workers=2, beam_args=given) == ([], "")
    config = PipelineConfig(data=csv_dir, beam_workers=2, beam_args=given)
    assert beam_policy.local_config(config, csv_dir, print).beam_args == beam_policy.beam_args(
        config
    )


def test_local_config_adds_the_workers_and_says_so(csv_dir):
    said = []
    config = PipelineConfig(data=csv_dir, beam_workers=2)
    local = beam_policy.local_config(config, csv_dir, said.append)
    assert local.beam_args == beam_policy.beam_args(config) + [MULTI, "--direct_num_workers=2"]
    assert len(said) == 1 and "--beam-workers 1 keeps them in-process" in said[0]


def test_negative_beam_workers_are_refused():
    with pytest.raises(ValueError, match="beam_workers must be >= 0"):
        PipelineConfig(beam_workers=-1).validate()
