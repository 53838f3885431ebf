"""The DataValidator executor on real statistics: verdicts, the anomalies file, the ledger."""

import json
import os

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from tests.components.data_validator.test_schema_curation import LABEL, curated_schema, span
from tfx_metric_learning.components.data_validator import executor, ledger, spec
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
    path = os.path.join(drifted.uri, f"Split-{NEW_SPAN}", spec.ANOMALIES_FILE)
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


def example_stats(tmp_path, name, frame):
    """TFDV's statistics of ``frame`` written as ExampleGen writes rows: NaN = missing value."""
    path = str(tmp_path / f"{name}.tfrecord")
    with tf.io.TFRecordWriter(path) as out:
        for row in frame.to_dict("records"):
            feature = {
                k: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                for k, v in row.items()
                if k != LABEL
            }
            label = tf.train.BytesList(value=[row[LABEL].encode()])
            feature[LABEL] = tf.train.Feature(bytes_list=label)
            out.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return tfdv.generate_statistics_from_tfrecord(path)


def frame_of(seed, rows=120):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "weight": rng.normal(70.0, 10.0, rows),
            "height": rng.normal(170.0, 8.0, rows),
            "rare": np.where(rng.random(rows) < 0.95, 0.0, rng.random(rows)),
            LABEL: rng.choice(list("abcdefghij"), rows).astype(object),
        }
    )


def test_one_empty_cell_passes_and_many_are_named_with_their_measure(tmp_path):
    validate(tmp_path, 1, span(0))
    one = frame_of(1)
    one.loc[7, "height"] = np.nan  # one empty cell in 120 rows
    passed, verdicts = validate(tmp_path, 2, example_stats(tmp_path, "one", one))
    assert passed.get_int_custom_property("blessed") == 1, ledger.verdicts(verdicts)[2]

    many = frame_of(2)
    many.loc[:35, "height"] = np.nan  # 36 of 120 rows: 30% > the 5% the schema allows
    rejected, verdicts = validate(tmp_path, 3, example_stats(tmp_path, "many", many))
    assert rejected.get_int_custom_property("blessed") == 0
    (found,) = json.loads(rejected.get_string_custom_property("anomalies_found"))
    assert (found["feature"], found["anomaly"]) == ("height", "Missing values")
    assert "measured" not in found  # height's drift (below its threshold) is not the reason
    text = executor.message([found])
    assert "30.0% of the rows have no value" in text and "at most 5.0%" in text, text
    # the anomaly is in TFX's anomalies file too, as TFDV's type
    path = os.path.join(rejected.uri, f"Split-{NEW_SPAN}", spec.ANOMALIES_FILE)
    written = anomalies_pb2.Anomalies.FromString(open(path, "rb").read())
    assert written.anomaly_info["height"].reason[0].type == executor._LOW_PRESENCE

    dropped = frame_of(3)
    dropped["height"] = np.nan  # the column is there but empty in every row
    gone, _ = validate(tmp_path, 4, example_stats(tmp_path, "gone", dropped))
    (found,) = json.loads(gone.get_string_custom_property("anomalies_found"))
    assert (found["feature"], found["anomaly"]) == ("height", "Column dropped")


def test_a_feature_without_the_tag_is_left_to_tfdv():
    schema, _ = curated_schema()
    for feature in schema.feature:
        del feature.annotation.tag[:]
    stats = tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"weight": [1.0, np.nan] * 10, LABEL: ["a", "b"] * 10})
    )
    anomalies = tfdv.validate_statistics(stats, schema)
    assert executor.missing_value_anomalies(stats, schema, anomalies) == []


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
