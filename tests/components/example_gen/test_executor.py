import csv
import gzip
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from tests.components.example_gen.helpers import run_example_gen
from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.example_gen import executor, inputs, ranges, spec
from tfx_metric_learning.components.example_gen import rows as rows_module
from tfx_metric_learning.components.example_gen.split_plan import NEW_SPAN
from tfx_metric_learning.pipeline import data


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read_split(out_dir, split):
    folder = os.path.join(out_dir, f"Split-{split}")
    examples = []
    for name in sorted(os.listdir(folder)):
        with gzip.open(os.path.join(folder, name), "rb") as f:
            raw = f.read()
        for record in tf.data.TFRecordDataset(os.path.join(folder, name), "GZIP"):
            examples.append(tf.train.Example.FromString(record.numpy()))
        assert raw
    return examples


def _rows(n_classes=4, per_class=20, dim=3, labels_as=None):
    names = labels_as or [f"c{i}" for i in range(n_classes)]
    return [
        [i * 0.1 + d for d in range(dim)] + [names[i % n_classes]]
        for i in range(n_classes * per_class)
    ]


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return os.path.dirname(data.prepare_default_data(str(tmp_path_factory.mktemp("d"))))


def test_seen_classes_split_is_exactly_stratified(digits_dir, tmp_path):
    report = run_example_gen(digits_dir, "digits.csv", str(tmp_path / "out"))
    assert report["rows_read"] == report["rows_written"] == 1797
    for label, total in report["classes"].items():
        held = report["splits"]["eval"]["classes"][label]
        assert held == round(total * 0.3), label
        valid = report["splits"]["valid"]["classes"][label]
        assert valid == round((total - held) * 0.2), label  # validation_fraction 0.2
        assert report["splits"]["train"]["classes"][label] == total - held - valid
    out = str(tmp_path / "out")
    rows = {split: _read_split(out, split) for split in ("train", "eval", "valid")}
    for split, examples in rows.items():
        assert len(examples) == report["splits"][split]["rows"], split
    # disjoint: selection (valid) never sees a test (eval) row, nor trains on one
    serialized = {split: {e.SerializeToString() for e in ex} for split, ex in rows.items()}
    assert not serialized["valid"] & serialized["eval"]
    assert not serialized["valid"] & serialized["train"]
    assert sum(map(len, serialized.values())) == 1797


def test_no_validation_split_at_fraction_zero(digits_dir, tmp_path):
    report = run_example_gen(
        digits_dir, "digits.csv", str(tmp_path / "out"), validation_fraction=0.0
    )
    assert set(report["splits"]) == {"train", "eval"}
    assert report["splits"]["train"]["rows"] + report["splits"]["eval"]["rows"] == 1797


def test_unseen_classes_hold_out_the_upper_half(digits_dir, tmp_path):
    report = run_example_gen(
        digits_dir, "digits.csv", str(tmp_path / "out"), protocol="unseen_classes"
    )
    # validation: the upper max(2, round(5 x 0.2)) = 2 training classes, never eval classes
    assert sorted(report["splits"]["train"]["classes"]) == ["0", "1", "2"]
    assert sorted(report["splits"]["valid"]["classes"]) == ["3", "4"]
    assert sorted(report["splits"]["eval"]["classes"]) == ["5", "6", "7", "8", "9"]
    assert report["validation_classes"] == ["3", "4"]

    def labels(split):
        return {
            e.features.feature["label"].bytes_list.value[0]
            for e in _read_split(str(tmp_path / "out"), split)
        }

    assert labels("eval") == {b"5", b"6", b"7", b"8", b"9"}
    assert labels("valid") == {b"3", b"4"}


def test_split_is_deterministic_for_a_seed_and_changes_with_it(tmp_path):
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows())
    first = run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "o1"), seed=1)
    again = run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "o2"), seed=1)
    run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "o3"), seed=2)

    def eval_rows(out):
        return sorted(e.SerializeToString() for e in _read_split(str(tmp_path / out), "eval"))

    assert first["splits"] == again["splits"]
    assert eval_rows("o1") == eval_rows("o2") != eval_rows("o3")


def test_missing_labels_are_dropped_and_counted_below_the_limit(tmp_path):
    rows = _rows(per_class=50)
    rows[3][-1] = ""  # 1 of 200 rows = 0.5% < 1%
    rows[7][0] = ""  # a missing feature value: kept, imputed later, counted
    rows[8][1] = "nan"
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], rows)
    report = run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"))
    assert report["bad_rows"] == {"missing_label": 1}
    assert report["rows_written"] == 199
    assert report["missing_values"] == {"a": 1, "b": 1}
    values = [
        e.features.feature["a"].float_list.value[0]
        for split in ("train", "eval", "valid")
        for e in _read_split(str(tmp_path / "out"), split)
    ]
    assert sum(v != v for v in values) == 1  # NaN marks the missing value


def test_too_many_bad_rows_stop_the_run_naming_file_and_count(tmp_path):
    rows = _rows(per_class=10)
    for i in (1, 2, 3):
        rows[i][-1] = ""
    rows[5] = rows[5][:2]  # wrong field count
    path = _write_csv(tmp_path / "bad.csv", ["a", "b", "c", "label"], rows)
    with pytest.raises(executor.DataError) as err:
        run_example_gen(str(tmp_path), "bad.csv", str(tmp_path / "out"))
    message = str(err.value)
    assert "4 of 40 rows" in message and str(path) in message
    assert "missing_label: 3" in message and "wrong_field_count: 1" in message


def test_allowed_fraction_is_configurable(tmp_path):
    rows = _rows(per_class=10)
    rows[1][-1] = ""
    rows[2][-1] = ""
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], rows)
    report = run_example_gen(
        str(tmp_path),
        "d.csv",
        str(tmp_path / "out"),
        max_bad_row_fraction=0.1,
        validation_fraction=0.0,  # 7 training rows a class: too few to validate on
    )
    assert report["bad_rows"] == {"missing_label": 2}


def test_a_validation_split_too_small_to_select_on_is_refused_with_the_remedy(tmp_path):
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows(per_class=10))
    with pytest.raises(executor.DataError) as err:
        run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"))
    message = str(err.value)
    assert "split 'valid' has 4 class(es) and 0 with 2 or more rows" in message
    assert "classes need at least 8 training rows each at --validation-fraction 0.2" in message
    assert "--validation-fraction 0" in message


def test_non_numeric_feature_column_is_named(tmp_path):
    rows = [r[:2] + ["red" if i % 2 else "blue"] + r[3:] for i, r in enumerate(_rows())]
    _write_csv(tmp_path / "d.csv", ["a", "b", "colour", "label"], rows)
    with pytest.raises(executor.DataError, match="feature column 'colour' is not numeric"):
        run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"))


def test_missing_label_column_is_named_with_the_columns(tmp_path):
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows())
    with pytest.raises(ValueError, match="label column 'species' does not exist.*a, b, c, label"):
        run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"), label_column="species")


def test_string_labels_and_messy_column_names_work(tmp_path):
    _write_csv(tmp_path / "d.csv", ["sepal length (cm)", "2nd", "x", "Species Name"], _rows())
    report = run_example_gen(
        str(tmp_path), "d.csv", str(tmp_path / "out"), label_column="Species Name"
    )
    assert report["label_column"] == "Species_Name"
    assert report["feature_columns"] == ["sepal_length_cm", "f_2nd", "x"]
    assert set(report["classes"]) == {"c0", "c1", "c2", "c3"}


def test_single_class_eval_split_fails_naming_the_split(tmp_path):
    rows = _rows(n_classes=3)
    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], rows)
    with pytest.raises(executor.DataError, match="split 'eval' has 1 class"):
        run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"), protocol="unseen_classes")


def test_tfrecord_input_is_validated_like_csv(tmp_path):
    path = str(tmp_path / "d.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i, row in enumerate(_rows()):
            feature = {
                "a": tf.train.Feature(float_list=tf.train.FloatList(value=[row[0]])),
                "b": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 4])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    report = run_example_gen(str(tmp_path), "d.tfrecord", str(tmp_path / "out"))
    assert report["rows_written"] == 80
    assert set(report["classes"]) == {"0", "1", "2", "3"}
    assert report["feature_columns"] == ["a", "b"]


def test_a_tfrecord_file_of_only_bad_rows_is_counted_against_its_file(tmp_path):
    def write(name, rows):
        with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
            for a, label in rows:
                feature = {"a": tf.train.Feature(float_list=tf.train.FloatList(value=[a]))}
                if label is not None:
                    feature["label"] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[label.encode()])
                    )
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())

    write("a.tfrecord", [(float(i), f"c{i % 4}") for i in range(80)])
    write("b.tfrecord", [(1.0, None), (float("inf"), "c1")])  # a chunk with no row kept
    report = run_example_gen(
        str(tmp_path), "*.tfrecord", str(tmp_path / "out"), max_bad_row_fraction=0.05
    )
    assert report["rows_read"] == 82 and report["rows_written"] == 80
    assert report["bad_rows"] == {"missing_label": 1, "non_finite_value": 1}
    assert report["bad_rows_by_file"] == {str(tmp_path / "b.tfrecord"): 2}


def test_gzip_latin1_semicolon_csv_is_read_with_its_settings(tmp_path):
    rows = _rows(labels_as=["café", "thé", "eau", "lait"])
    with gzip.open(tmp_path / "d.csv.gz", "wt", encoding="latin-1", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["a", "b", "c", "label"])
        writer.writerows(rows)
    report = run_example_gen(str(tmp_path), "d.csv.gz", str(tmp_path / "out"), encoding="latin-1")
    assert report["rows_written"] == 80 and report["delimiter"] == ";"
    assert set(report["classes"]) == {"café", "thé", "eau", "lait"}


def test_quoted_newline_in_the_header_is_one_header(tmp_path):
    _write_csv(tmp_path / "d.csv", ["width\n(cm)", "b", "c", "label"], _rows())
    report = run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"))
    assert report["rows_read"] == report["rows_written"] == 80
    assert report["feature_columns"] == ["width_cm", "b", "c"]


def test_tfrecord_feature_names_are_sanitised_like_csv_columns(tmp_path):
    path = str(tmp_path / "d.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i, row in enumerate(_rows()):
            feature = {
                name: tf.train.Feature(float_list=tf.train.FloatList(value=[row[j]]))
                for j, name in enumerate(["c d", "a/b", "new\nline"])
            }
            feature["label"] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[b"x%d" % (i % 4)])
            )
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    report = run_example_gen(str(tmp_path), "d.tfrecord", str(tmp_path / "out"))
    assert report["rows_written"] == 80
    assert sorted(report["feature_columns"]) == ["a_b", "c_d", "new_line"]
    names = set(_read_split(str(tmp_path / "out"), "train")[0].features.feature)
    assert names == {"a_b", "c_d", "new_line", "label"}


def test_columns_that_sanitise_to_one_name_are_refused(tmp_path):
    _write_csv(tmp_path / "d.csv", ["a b", "a_b", "c", "label"], _rows())
    with pytest.raises(executor.DataError, match="columns 'a b' and 'a_b' both become"):
        run_example_gen(str(tmp_path), "d.csv", str(tmp_path / "out"))


def test_a_window_of_spans_skips_rejected_ones_and_splits_out_the_newest(tmp_path):
    header = ["a", "b", "c", "label"]
    for span in (1, 2, 3):
        folder = tmp_path / "data" / f"span-{span}"
        folder.mkdir(parents=True)
        rows = [[span, i, 0.5, f"c{i % 4}"] for i in range(40)]  # feature a = the span number
        _write_csv(str(folder / "d.csv"), header, rows)
    (tmp_path / "data" / "span-4").mkdir()  # arriving: no file yet
    verdicts = str(tmp_path / "verdicts")
    ledger.record(verdicts, {"span": 2, "version": None, "accepted": False})
    out = str(tmp_path / "out")
    artifact = standard_artifacts.Examples()
    report = run_example_gen(
        str(tmp_path / "data"),
        "*",
        out,
        artifact=artifact,
        data_pattern="span-{SPAN}/*.csv",
        window=2,
        verdicts_dir=verdicts,
    )
    assert [s["span"] for s in report["spans"]] == [1, 3]
    assert report["spans_left_out"] == [{"span": 2, "version": None}]
    assert report["spans_without_files"] == [4]  # said, not silently skipped
    assert report["rows_read"] == 80
    spans_of = {
        split: sorted(
            {e.features.feature["a"].float_list.value[0] for e in _read_split(out, split)}
        )
        for split in ("train", "eval", NEW_SPAN)
    }
    assert spans_of == {"train": [1.0, 3.0], "eval": [1.0, 3.0], NEW_SPAN: [3.0]}
    assert len(_read_split(out, NEW_SPAN)) == 40
    assert artifact.get_string_custom_property(spec.SPANS_PROPERTY) == "1,3"
    assert artifact.get_string_custom_property(spec.LEFT_OUT_PROPERTY) == "2"
    assert artifact.span == 3  # the span the driver resolved, as the Examples property


def test_spans_whose_columns_differ_are_read_as_the_union_with_missing_values(tmp_path):
    # span 2 loses column b and gains column e, in another column order; span 3 has them all
    headers = {1: ["a", "b", "label"], 2: ["e", "label", "a"], 3: ["a", "b", "label", "e"]}
    for span, header in headers.items():
        folder = tmp_path / "data" / f"span-{span}"
        folder.mkdir(parents=True)
        rows = [{"a": span, "b": 10 + i, "e": 20 + i, "label": f"c{i % 4}"} for i in range(40)]
        _write_csv(str(folder / "d.csv"), header, [[r[c] for c in header] for r in rows])
    out = str(tmp_path / "out")
    report = run_example_gen(
        str(tmp_path / "data"), "*", out, data_pattern="span-{SPAN}/*.csv", window=3
    )
    assert report["rows_written"] == 120 and not report["bad_rows"]
    assert report["missing_values"] == {"b": 40, "e": 40}  # each absent from one span's rows
    new_span = [
        e
        for split in ("train", "eval", "valid")
        for e in _read_split(out, split)
        if e.features.feature["a"].float_list.value[0] == 2.0
    ]
    values = {
        name: {e.features.feature[name].float_list.value[0] for e in new_span}
        for name in ("a", "b")
    }
    assert values["a"] == {2.0}  # read by name, not by position
    assert all(v != v for v in values["b"])  # NaN: span 2 has no column b
    assert sorted(e.features.feature["e"].float_list.value[0] for e in new_span) == [
        20.0 + i for i in range(40)
    ]


def test_without_spans_a_different_header_is_refused_naming_the_columns(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_csv(str(data / "a.csv"), ["a", "b", "label"], _rows(dim=2))
    _write_csv(str(data / "b.csv"), ["a", "e", "label"], _rows(dim=2))
    with pytest.raises(Exception, match="adds column\\(s\\) 'e'; lacks column\\(s\\) 'b'"):
        run_example_gen(str(data), "*", str(tmp_path / "out"))


def test_settings_that_change_the_compiled_splits_ask_for_a_new_compile(tmp_path):
    """A runtime ``ingest`` parameter cannot add or drop the validation split silently."""
    from tfx.types import standard_component_specs
    from tfx.utils import proto_utils

    from tfx_metric_learning.components.example_gen import component
    from tfx_metric_learning.components.example_gen.settings import IngestSettings

    _write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows(per_class=50))
    for compiled, at_runtime, words in ((0.2, 0.0, "leaves out"), (0.0, 0.2, "asks for")):
        gen = component.labelled_example_gen(
            str(tmp_path), "d.csv", IngestSettings(validation_fraction=compiled)
        )
        props = {
            k: proto_utils.proto_to_json(v) if hasattr(v, "DESCRIPTOR") else v
            for k, v in gen.exec_properties.items()
        }
        runtime = inputs.pack_settings(IngestSettings(validation_fraction=at_runtime))
        props[standard_component_specs.CUSTOM_CONFIG_KEY] = proto_utils.proto_to_json(runtime)
        examples = standard_artifacts.Examples()
        examples.uri = str(tmp_path / f"out{compiled}")
        with pytest.raises(executor.DataError, match=f"{words} the validation split"):
            executor.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, props)


def test_worker_processes_write_what_one_process_writes(tmp_path, monkeypatch):
    """Many byte ranges on 2 worker processes: the same rows in every split, the same report."""
    data = tmp_path / "in"
    data.mkdir()
    bad = {7: ["1", "", ""], 500: ["1", "2"]}  # a missing label, a wrong field count
    rows = [bad.get(i, [i * 0.5, i % 7, f"c{i % 9}"]) for i in range(1500)]
    _write_csv(data / "a.csv", ["f1", "f2", "label"], rows[:900])
    _write_csv(data / "b.csv", ["f1", "f2", "label"], rows[900:])
    monkeypatch.setattr(ranges, "RANGE_BYTES", 1000)  # ranges are planned in this process
    assert len(ranges.plan([str(data / "a.csv"), str(data / "b.csv")], 1)) > 10
    reports, written = [], []
    for name, args in [
        ("one", ["--runner=FnApiRunner"]),
        ("two", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
    ]:
        out = str(tmp_path / name)
        reports.append(
            run_example_gen(str(data), "*.csv", out, beam_args=args, label_column="label")
        )
        written.append(
            {
                split: sorted(
                    e.SerializeToString(deterministic=True) for e in _read_split(out, split)
                )
                for split in ("train", "eval", "valid")
            }
        )
        assert not os.path.exists(os.path.join(out, spec.STAGING_DIR))
    assert reports[0]["rows_read"] == 1500
    assert reports[0]["bad_rows"] == {
        rows_module.MISSING_LABEL: 1,
        rows_module.WRONG_FIELD_COUNT: 1,
    }
    assert reports[0] == reports[1]
    assert written[0] == written[1]
    assert sum(len(v) for v in written[0].values()) == 1498


def test_files_changed_since_the_run_was_planned_fail_the_execution(tmp_path):
    """On Kubeflow the task is cached on the planned digest: it must be what was read."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    header = ["a", "b", "c", "label"]
    _write_csv(str(data_dir / "d.csv"), header, _rows())
    report = run_example_gen(str(data_dir), "d.csv", str(tmp_path / "first"))
    planned = inputs.fingerprint_digest(report["input_fingerprint"])
    as_planned = {spec.PLANNED_DIGEST_KEY: planned}
    run_example_gen(str(data_dir), "d.csv", str(tmp_path / "same"), overrides=as_planned)
    _write_csv(str(data_dir / "d.csv"), header, _rows(per_class=21))  # rewritten after the plan
    with pytest.raises(executor.DataError, match="changed between the run's plan"):
        run_example_gen(str(data_dir), "d.csv", str(tmp_path / "late"), overrides=as_planned)
