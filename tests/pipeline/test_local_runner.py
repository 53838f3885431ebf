"""The local runner's Beam arguments."""

import pytest
from tfx.utils import dependency_utils

from tfx_metric_learning.pipeline import local_runner
from tfx_metric_learning.pipeline.config import PipelineConfig


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], [*local_runner.DEFAULT_BEAM_ARGS, local_runner.LOCAL_WORKERS_ARG]),
        (
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
            [
                "--runner=FnApiRunner",
                "--direct_running_mode=multi_processing",
                "--direct_num_workers=2",
                local_runner.LOCAL_WORKERS_ARG,
            ],
        ),
        (
            ["--runner=DirectRunner"],
            [
                "--direct_running_mode=in_memory",
                "--runner=DirectRunner",
                local_runner.LOCAL_WORKERS_ARG,
            ],
        ),
        # a remote runner, or dependencies named by the user: nothing added
        (
            ["--runner=DataflowRunner"],
            ["--direct_running_mode=in_memory", "--runner=DataflowRunner"],
        ),
        (
            ["--setup_file=./setup.py"],
            [*local_runner.DEFAULT_BEAM_ARGS, "--setup_file=./setup.py"],
        ),
    ],
)
def test_beam_args_keep_tfx_from_packaging_itself_for_local_workers_only(given, expected):
    args = local_runner.beam_args(PipelineConfig(beam_args=given))
    assert args == expected
    if "--runner=DataflowRunner" not in args:
        # TFX's own check (BaseBeamExecutor) then leaves the arguments as they are: no sdist
        assert dependency_utils.make_beam_dependency_flags(args) == args
