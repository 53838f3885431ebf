import csv
import os
import subprocess
import sys

import pytest

from tfx_metric_learning.pipeline import cli
from tfx_metric_learning.trainer_module.losses import registry


def test_unknown_loss_is_refused_before_the_pipeline_starts(capsys, tmp_path):
    code = cli.main(["run", "--loss", "nope", "--pipeline-root", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown loss 'nope'" in err and ", ".join(registry.names()) in err
    assert not os.path.exists(tmp_path / "r")


def test_missing_label_column_is_refused_naming_it(capsys, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,target\n1,2,x\n")
    code = cli.main(["run", "--data", str(path), "--pipeline-root", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "label column 'label' does not exist" in err and "target" in err


def test_bad_loss_parameter_is_refused(capsys, tmp_path):
    code = cli.main(
        [
            "run",
            "--loss",
            "triplet",
            "--loss-param",
            "margin=-1",
            "--pipeline-root",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2 and "margin" in capsys.readouterr().err


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--data",
        "--label-column",
        "--loss",
        "--epochs",
        "--batch-size",
        "--protocol",
        "--pipeline-root",
        "--beam-arg",
        "--train-steps",
        "--threshold",
        "--cpu-replicas",
        "--max-bad-rows",
    ):
        assert option in text, option
    for name in registry.names():
        assert name in text


@pytest.mark.e2e
def test_too_many_bad_rows_stop_the_run_with_file_and_count(tmp_path):
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "label"])
        for i in range(100):
            writer.writerow([i, i % 7, "" if i < 5 else i % 3])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfx_metric_learning.pipeline.cli",
            "run",
            "--data",
            str(path),
            "--pipeline-root",
            str(tmp_path / "root"),
            "--batch-size",
            "32",  # fits the split, so the run starts and ExampleGen counts the bad rows
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_USE_LEGACY_KERAS="1"),
    )
    assert proc.returncode == 1
    assert "5 of 100 rows" in proc.stderr and str(path) in proc.stderr, proc.stderr
    assert "missing_label: 5" in proc.stderr
    assert not os.path.exists(tmp_path / "root" / "serving_model")


def test_registry_cli_and_docs_list_the_same_losses(capsys):
    import re

    from tests.conftest import REPO_DIR

    section = open(f"{REPO_DIR}/docs/losses.md").read()
    in_readme = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.M)
    assert sorted(in_readme) == registry.names()
    assert cli.main(["losses"]) == 0
    listed = [
        line.split()[0]
        for line in capsys.readouterr().out.splitlines()
        if line and not line.startswith(" ")
    ]
    assert sorted(listed) == registry.names()
    # the docs' list of losses that take a distance object is the registry's
    marked = section[section.index("<!-- distance-losses -->") : section.index("<!-- /distance")]
    with_distance = [n for n in registry.names() if "distance" in registry.get_spec(n).params]
    assert re.findall(r"`([a-z0-9_]+)`", marked) == with_distance


def test_component_beam_args_override_one_component(tmp_path):
    from tfx_metric_learning.pipeline.config import PipelineConfig
    from tfx_metric_learning.pipeline.pipeline import create_pipeline

    config = PipelineConfig(
        pipeline_root=str(tmp_path),
        beam_args=["--runner=DirectRunner"],
        component_beam_args={"Transform": ["--direct_num_workers=2"]},
    )
    csv = tmp_path / "d.csv"
    csv.write_text("a,label\n1,x\n")
    pipeline = create_pipeline(config, str(csv))
    by_id = {c.id: c for c in pipeline.components}
    # the pipeline's arguments first, the component's own after them (so they win)
    assert by_id["Transform"].executor_spec.beam_pipeline_args == [
        "--runner=DirectRunner",
        "--direct_num_workers=2",
    ]
    assert by_id["PairGen"].executor_spec.beam_pipeline_args == ["--runner=DirectRunner"]
    config.component_beam_args = {"Trainer": ["--x"]}
    with pytest.raises(ValueError, match="no Beam component 'Trainer'.*Transform"):
        create_pipeline(config, str(csv))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "seen_classes,bogus"], "'protocol' must be one of seen_classes"),
        (["--protocol", "seen_classes,seen_classes"], "a protocol is given twice"),
        (["--candidate", "supcon margin=1"], "'margin' is neither a parameter of 'supcon'"),
        (["--losses", "supcon,supcon"], "given twice: supcon"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--validation-fraction", "0"], "--validation-fraction must be > 0"),
        (["--loss", "supcon"], "--loss: a comparison's candidates set the loss"),
        (["--loss-param", "margin=1", "--warm-start"], "--loss-param, --warm-start: a comp"),
        (["--tuning-trials", "-1"], "--tuning-trials must be >= 0"),
    ],
)
def test_a_comparison_that_cannot_run_is_refused_before_it_starts(capsys, tmp_path, args, message):
    root = tmp_path / "root"
    assert cli.main(["compare", "--pipeline-root", str(root), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not root.exists()  # nothing was started, not even the pipeline root


def test_model_embedding_components_stay_in_process_beside_worker_processes(tmp_path):
    from tfx_metric_learning.pipeline import beam_policy
    from tfx_metric_learning.pipeline.config import PipelineConfig
    from tfx_metric_learning.pipeline.pipeline import create_pipeline

    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    config = PipelineConfig(
        pipeline_root=str(tmp_path),
        beam_args=["--runner=DirectRunner", *workers],
        component_beam_args={"GalleryIndex": ["--direct_running_mode=multi_processing"]},
    )
    csv = tmp_path / "d.csv"
    csv.write_text("a,label\n1,x\n")
    by_id = {c.id: c for c in create_pipeline(config, str(csv)).components}
    args = {
        name: c.executor_spec.beam_pipeline_args
        for name, c in by_id.items()
        if hasattr(c, "with_beam_pipeline_args")
    }
    assert args["RetrievalEvaluator"][-2:] == beam_policy.IN_PROCESS_ARGS
    # the user's own arguments for a component still come last, so they win
    assert args["GalleryIndex"][-3:] == [
        *beam_policy.IN_PROCESS_ARGS,
        "--direct_running_mode=multi_processing",
    ]
    for name in ("Transform", "PairGen", "InputBaselines", "StatisticsGen"):
        assert args[name] == config.beam_args, name
    # without worker processes nothing is added
    assert beam_policy.model_embedding_args(["--direct_running_mode=in_memory"]) == []
    assert beam_policy.model_embedding_args([*workers, "--direct_running_mode=in_memory"]) == []
    assert beam_policy.model_embedding_args(workers) == beam_policy.IN_PROCESS_ARGS
