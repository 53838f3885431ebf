import pytest

from tests.pipeline.hostile_cases import labelled_rows, write_csv
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.pipeline import preflight
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.trainer_module.settings import TrainingSettings


def _config(validation_fraction=0.2, **training):
    return PipelineConfig(
        training=TrainingSettings(**training),
        ingest=IngestSettings(validation_fraction=validation_fraction),
    )


def test_fitting_settings_pass_and_report_the_planned_split(tmp_path):
    path = write_csv(str(tmp_path / "d.csv"), ["a", "b", "label"], labelled_rows(4, 60))
    found = preflight.check(_config(batch_size=64), path)
    assert found["rows"] == 240 and found["classes"] == 4
    # 60 a class: 18 eval, then round(42 x 0.2) = 8 valid, 34 train
    assert found["planned_split_rows"] == {"train": 136, "eval": 72, "valid": 32}


def test_offline_modes_count_pair_gen_examples_not_rows():
    counts = {f"c{i}": 10 for i in range(4)}  # 28 train rows without a validation split
    # triplets: 4 per train row = 112 examples, so a batch of 100 fits, 120 does not
    no_valid = {"validation_fraction": 0.0}
    assert (
        preflight.data_problems(_config(loss="triplet", batch_size=100, **no_valid), counts) == []
    )
    found = preflight.data_problems(_config(loss="triplet", batch_size=120, **no_valid), counts)
    assert found and "more than the 112 examples" in found[0]
    # classification losses take any batch, mining losses need same-class pairs in it
    assert (
        preflight.data_problems(
            _config(loss="sparse_categorical_crossentropy", batch_size=2, **no_valid), counts
        )
        == []
    )
    assert (
        "same-class pairs" in preflight.data_problems(_config(batch_size=2, **no_valid), counts)[0]
    )
    # with the default validation split, 10 rows a class are too few to select on
    assert "split 'valid' has 4 class(es)" in preflight.data_problems(_config(), counts)[0]


def test_many_classes_need_larger_mining_batches():
    counts = {f"c{i}": 20 for i in range(200)}
    found = preflight.data_problems(_config(batch_size=16), counts)
    assert "use --batch-size 21 or more, or --batch-sampler pk" in found[0]
    assert preflight.data_problems(_config(batch_size=32), counts) == []
    pk = _config(batch_size=16, batch_sampler="pk", pk_classes=8)
    assert preflight.data_problems(pk, counts) == []
    one_per_class = _config(batch_size=8, batch_sampler="pk", pk_classes=8)
    assert "K >= 2" in preflight.data_problems(one_per_class, counts)[0]


def test_unreadable_data_is_a_preflight_error(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(preflight.PreflightError, match="label column 'label' does not exist"):
        preflight.check(PipelineConfig(ingest=IngestSettings()), str(path))


def test_a_comparison_checks_every_candidate_and_names_the_one_that_cannot_run(tmp_path):
    path = write_csv(str(tmp_path / "d.csv"), ["a", "b", "label"], labelled_rows(4, 60))
    config = _config(batch_size=64)
    fitting = {"supcon": TrainingSettings(loss="supcon", batch_size=64)}
    assert preflight.check(config, path, fitting)["rows"] == 240
    # 136 train rows: triplet builds 4 per row (544 examples), contrastive pairs too; a batch
    # of 200 fits no mining batch of 136 rows
    too_big = {**fitting, "supcon batch_size=200": TrainingSettings(loss="supcon", batch_size=200)}
    with pytest.raises(preflight.PreflightError) as refused:
        preflight.check(config, path, too_big)
    message = str(refused.value)
    assert "supcon batch_size=200: batch_size 200 is more than the 136 examples" in message
    assert "  - supcon:" not in message  # the candidate that fits is not named


def test_the_schema_command_checks_only_what_it_runs(tmp_path, monkeypatch):
    """``schema`` trains nothing: a batch larger than the train split does not refuse it."""
    from tfx_metric_learning.pipeline import cli, local_runner

    data = write_csv(str(tmp_path / "d.csv"), ["a", "b", "label"], labelled_rows(4, 60))
    ran = []
    monkeypatch.setattr(local_runner, "_write_schema", lambda config, *rest: ran.append(1) or {})
    common = ["--pipeline-root", str(tmp_path / "root"), "--data", data, "--batch-size", "100000"]
    schema = ["--schema", str(tmp_path / "schema.pbtxt")]
    assert cli.main(["run", *common]) == 2 and not ran  # run trains: refused up front
    assert cli.main(["schema", *common, *schema]) == 0 and ran == [1]
    # what ingestion needs is still checked
    config = PipelineConfig(
        pipeline_root=str(tmp_path / "root"),
        ingest=IngestSettings(protocol="unseen_classes", eval_classes=("x",)),
    )
    with pytest.raises(preflight.PreflightError, match="eval_classes x"):
        preflight.check(config, data, training=False)


@pytest.mark.parametrize(
    "path, named",
    [
        ("acme_nowhere.prep.fn", r"importing acme_nowhere.prep failed \(ModuleNotFoundError"),
        ("json.no_such_fn", "json.no_such_fn is nothing, not a function"),
        ("os.sep", "os.sep is a str, not a function"),
    ],
)
def test_a_preprocessing_fn_that_cannot_be_imported_is_refused_up_front(tmp_path, path, named):
    from tfx_metric_learning.trainer_module.transform_settings import (
        BUILT_IN_PREPROCESSING_FN,
        TransformSettings,
    )

    data = write_csv(str(tmp_path / "d.csv"), ["a", "b", "label"], labelled_rows(4, 60))
    config = PipelineConfig(
        training=TrainingSettings(batch_size=64),
        transform=TransformSettings(preprocessing_fn=path),
    )
    with pytest.raises(preflight.PreflightError, match=named):
        preflight.check(config, data)
    assert preflight.check(config, data, training=False)["rows"] == 240  # schema runs no Transform
    fine = TransformSettings(preprocessing_fn=BUILT_IN_PREPROCESSING_FN)
    assert preflight.check(PipelineConfig(training=config.training, transform=fine), data)
