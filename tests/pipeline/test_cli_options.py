"""CLI options come from the stages' settings: one definition, same flags for run and compile."""

import argparse

import pytest

from tfx_metric_learning.pipeline import cli
from tfx_metric_learning.pipeline.cli.options import add_stage_options, stage_settings_from_args
from tfx_metric_learning.pipeline.config import STAGES


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_stage_options(parser, STAGES)
    return stage_settings_from_args(parser.parse_args(list(argv)), STAGES)


def _option_strings(subcommand):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[subcommand]
    return {s for action in sub._actions for s in action.option_strings}


def test_every_cli_setting_of_every_stage_is_an_option_of_run_and_compile():
    flags = {info.flag for cls in STAGES.values() for info in cls.fields() if info.cli}
    assert {"--loss", "--loss-param", "--epochs", "--threshold", "--pair-block-rows"} <= flags
    assert flags <= _option_strings("run")
    assert flags <= _option_strings("compile")


def test_no_option_keeps_every_default_of_the_settings():
    parsed = _parse()
    for name, cls in STAGES.items():
        assert parsed[name] == cls(), name


def test_options_set_their_settings_and_shared_flags_set_every_stage():
    parsed = _parse(
        "--seed", "7", "--loss", "contrastive", "--loss-param", "margin=0.5",
        "--loss-param", "distance=cosine", "--hidden-units", "32,16", "--threshold",
        "map_at_r=0.7", "--threshold", "eer=0.1", "--eval-classes", "a,b", "--max-bad-rows",
        "0.05", "--tolerance", "0.01",
    )  # fmt: skip
    seeded = [s for s in parsed.values() if hasattr(s, "seed")]
    assert len(seeded) == 5 and {s.seed for s in seeded} == {7}
    training = parsed["training"]
    assert training.loss_params == {"margin": 0.5, "distance": "cosine"}
    assert training.hidden_units == [32, 16]
    assert parsed["evaluation"].thresholds == {"map_at_r": 0.7, "eer": 0.1}
    assert parsed["evaluation"].comparison_tolerance == 0.01
    assert parsed["ingest"].eval_classes == ["a", "b"]
    assert parsed["ingest"].max_bad_row_fraction == 0.05


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threshold", "map_at_r=abc"], "'thresholds' must be an object of finite numbers"),
        (["--threshold", "map_at_r=2"], "outside [0, 1]"),
        (["--learning-rate", "nan"], "'learning_rate' must be a finite number"),
        (["--tolerance", "nan"], "'comparison_tolerance' must be a finite number"),
        (["--loss", "triplet", "--batch-sampler", "pk"], "is for online-mining losses"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(capsys, tmp_path, argv, message):
    root = tmp_path / "root"
    assert cli.main(["run", "--pipeline-root", str(root), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not root.exists()


def test_compile_refuses_the_same_bad_values(capsys, tmp_path):
    out = tmp_path / "p.yaml"
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/r"]
    assert cli.main([*args, "--loss-param", "margin=-1", "--output", str(out)]) == 2
    assert "parameter 'margin'" in capsys.readouterr().err and not out.exists()


def test_remote_pipeline_root_needs_a_local_metadata_path(capsys):
    assert cli.main(["run", "--pipeline-root", "gs://bucket/root"]) == 2
    assert "--metadata-path" in capsys.readouterr().err
