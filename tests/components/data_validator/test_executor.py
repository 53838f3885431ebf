"""The DataValidator executor on real statistics: verdicts, the anomalies file, the ledger."""

import json
import os

import pandas as pd
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from tests.components.data_validator.test_schema_curation import LABEL, curated_schema, span
from tfx_metric_learning.components.data_validator import executor, ledger
from tfx_metric_learning.components.data_validator.settings import ValidationSettings
from tfx_metric_learning.components.example_gen.split_plan import NEW_SPAN


def stats_artifact(root, name, by_split):
    """A StatisticsGen-like artifact holding ``{split: statistics}``."""
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(root / name)
    artifact.split_names = artifact_utils.encode_split_names(list(by_split))
    for split, stats in by_split.items():
        os.makedirs(os.path.join(artifact.uri, f"Split-{split}"))
        with open(os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb"), "wb") as f:
            f.write(stats.SerializeToString())
    return artifact


def validate(tmp_path, number, stats, **settings):
    """Runs the executor on ``stats`` (one span's, or ``{split: statistics}``)."""
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    if not os.path.exists(schema.uri):
        os.makedirs(schema.uri)
        tfdv.write_schema_text(curated_schema()[0], os.path.join(schema.uri, "schema.pbtxt"))
    examples = standard_artifacts.Examples()
    if number is not None:
        examples.set_int_custom_property("span", number)
    by_split = stats if isinstance(stats, dict) else {NEW_SPAN: stats}
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / f"anomalies-{number}-{len(settings)}")
    verdicts = str(tmp_path / "verdicts")
    executor.Executor().Do(
        {
            "statistics": [stats_artifact(tmp_path, f"stats-{number}-{len(settings)}", by_split)],
            "schema": [schema],
            "examples": [examples],
        },
        {"anomalies": [anomalies]},
        {"settings": ValidationSettings(verdicts_dir=verdicts, **settings).to_json()},
    )
    return anomalies, verdicts


def test_spans_are_checked_against_the_last_accepted_span(tmp_path):
    first, verdicts = validate(tmp_path, 1, span(0))
    assert first.get_int_custom_property("blessed") == 1
    assert ledger.verdicts(verdicts)[1]["baseline_span"] is None  # nothing to drift from

    drifted, _ = validate(tmp_path, 2, span(1, scale=4.0))
    assert drifted.get_int_custom_property("blessed") == 0
    found = json.loads(drifted.get_string_custom_property("anomalies_found"))
    assert [f["feature"] for f in found] == ["weight"]
    assert found[0]["measured"] > found[0]["threshold"] == 0.2
    assert "weight: High approximate Jensen-Shannon divergence" in executor.message(found)
    # the anomalies file stays in the artifact, in TFX's layout
    path = os.path.join(drifted.uri, f"Split-{NEW_SPAN}", executor.ANOMALIES_FILE)
    assert os.path.getsize(path) > 0
    assert ledger.rejected(verdicts) == {2: None}

    # span 3 is compared with span 1, the last accepted one, not with the drifted span 2
    clean, _ = validate(tmp_path, 3, span(2))
    assert clean.get_int_custom_property("blessed") == 1
    assert ledger.verdicts(verdicts)[3]["baseline_span"] == 1


def test_allow_anomalies_accepts_and_records_what_was_allowed(tmp_path):
    validate(tmp_path, 1, span(0))
    allowed, verdicts = validate(tmp_path, 2, span(1, scale=4.0), allow_anomalies=True)
    assert allowed.get_int_custom_property("blessed") == 1
    verdict = ledger.verdicts(verdicts)[2]
    assert verdict["accepted"] and verdict["allowed"]
    assert verdict["anomalies"][0]["feature"] == "weight"


def test_data_without_spans_is_checked_against_the_schema_only(tmp_path):
    bad = tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"weight": [1.0, float("nan")], LABEL: ["a", "b"]})
    )
    anomalies, verdicts = validate(tmp_path, None, {"train": span(0), "eval": bad})
    found = json.loads(anomalies.get_string_custom_property("anomalies_found"))
    assert {(f["split"], f["feature"]) for f in found} >= {("eval", "weight")}
    assert not any(f["split"] == "train" for f in found)
    assert anomalies.get_int_custom_property("blessed") == 0
    assert not os.path.exists(verdicts)  # no spans: no ledger


def test_the_span_is_read_as_an_int_or_as_kubeflow_s_double():
    local, kubeflow = standard_artifacts.Examples(), standard_artifacts.Examples()
    local.set_int_custom_property("span", 7)  # TFX's local driver
    kubeflow.span, kubeflow.version = 7, 2  # ExampleGen's executor, as Kubeflow passes it on
    doubles = standard_artifacts.Examples()
    doubles.set_float_custom_property("span", 7.0)  # artifact metadata holds doubles there
    assert executor.span_and_version(local) == (7, None)
    assert executor.span_and_version(kubeflow) == (7, 2)
    assert executor.span_and_version(doubles) == (7, None)
    assert executor.span_and_version(standard_artifacts.Examples()) == (0, None)
