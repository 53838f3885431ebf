"""ProductionModel hands the run a copy of the production model, or an empty artifact and why."""

import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from tfx_metric_learning.components.production import executor, record, spec


def _saved_model(path):
    module = tf.Module()
    module.scale = tf.Variable(3.0)
    module.f = tf.function(lambda x: x * module.scale, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, path, signatures={"serving_default": module.f})


def _run(serving, out):
    model = standard_artifacts.Model()
    model.uri = str(out)
    executor.Executor().Do({}, {spec.MODEL_KEY: [model]}, {spec.SERVING_DIR_KEY: str(serving)})
    return model


def test_the_production_model_is_copied_into_the_artifact_and_loads(tmp_path):
    serving = tmp_path / "serving"
    _saved_model(str(serving / "100"))
    record.write(str(serving), record.make_record("100", str(serving / "100")))
    model = _run(serving, tmp_path / "out")
    assert model.get_string_custom_property(spec.STATUS_PROPERTY) == spec.FOUND
    assert model.get_string_custom_property(spec.VERSION_PROPERTY) == "100"
    assert executor.has_model(model.uri)
    loaded = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    assert float(loaded.signatures["serving_default"](tf.constant([2.0]))["output_0"][0]) == 6.0
    found = json.load(open(os.path.join(model.uri, spec.FOUND_FILE)))
    assert found["status"] == spec.FOUND and found["record"]["version"] == "100"


def test_nothing_in_production_gives_an_artifact_without_a_model(tmp_path):
    model = _run(tmp_path / "serving", tmp_path / "out")
    assert model.get_string_custom_property(spec.STATUS_PROPERTY) == spec.NONE
    assert model.get_string_custom_property(spec.VERSION_PROPERTY) == ""
    assert not executor.has_model(model.uri)
    found = json.load(open(os.path.join(model.uri, spec.FOUND_FILE)))
    assert "no production record" in found["reason"]


def test_an_unusable_record_gives_no_model_and_a_retry_starts_clean(tmp_path):
    serving = tmp_path / "serving"
    _saved_model(str(serving / "100"))
    record.write(str(serving), record.make_record("100", str(serving / "100")))
    out = tmp_path / "out"
    assert executor.has_model(_run(serving, out).uri)
    (serving / spec.RECORD_FILE).write_text("{truncated")
    model = _run(serving, out)  # the same artifact folder, as a retried execution has
    assert model.get_string_custom_property(spec.STATUS_PROPERTY) == spec.UNUSABLE
    assert not executor.has_model(model.uri)


def test_a_record_changed_since_the_plan_fails_before_anything_is_written(tmp_path):
    serving = tmp_path / "serving"
    _saved_model(str(serving / "100"))
    record.write(str(serving), record.make_record("100", str(serving / "100")))
    planned = record.read(str(serving)).digest
    assert planned != record.NO_RECORD and len(planned) == 64
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "out")
    props = {spec.SERVING_DIR_KEY: str(serving), spec.PLANNED_DIGEST_KEY: planned}
    executor.Executor().Do({}, {spec.MODEL_KEY: [model]}, props)  # as planned: runs
    assert executor.has_model(model.uri)
    _saved_model(str(serving / "200"))  # a push after the plan
    record.write(str(serving), record.make_record("200", str(serving / "200")))
    model.uri = str(tmp_path / "again")
    with pytest.raises(executor.ProductionChanged, match="changed since this run was planned"):
        executor.Executor().Do({}, {spec.MODEL_KEY: [model]}, props)
    assert not os.path.exists(model.uri)
