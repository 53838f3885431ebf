"""The whole pipeline with our loss and our preprocessing_fn (conftest.py), run once."""

import math
import os

import tensorflow as tf
from conftest import LOSS, PREPROCESSING_FN

from tfx_metric_learning.testing import sqlite_store


def test_every_component_completes_and_the_evaluator_judges_our_model(fast_pipeline_run):
    assert set(fast_pipeline_run["components"].values()) == {"COMPLETE"}
    assert 0 < fast_pipeline_run["metrics"]["map_at_r"] <= 1
    # blessed, or refused with the reasons named (two epochs may not beat the raw features)
    assert fast_pipeline_run["blessed"] or fast_pipeline_run["reasons"]


def test_the_trainer_used_our_loss_and_transform_our_preprocessing_fn(
    fast_pipeline_run, fast_pipeline_config
):
    assert fast_pipeline_run["training"]["loss"] == LOSS
    store = sqlite_store(fast_pipeline_config.metadata_path)
    (transform,) = store.get_executions_by_type("tfx.components.transform.component.Transform")
    assert transform.custom_properties["preprocessing_fn"].string_value == PREPROCESSING_FN


def test_the_trained_model_serves_a_raw_row_onto_the_unit_sphere(fast_pipeline_run):
    model = tf.saved_model.load(os.path.join(fast_pipeline_run["model_uri"], "Format-Serving"))
    signature = model.signatures["serving_default"]
    row = {name: tf.constant([math.nan]) for name in signature.structured_input_signature[1]}
    embedding = signature(**row)["embedding"].numpy()
    assert abs(float((embedding**2).sum()) - 1.0) < 1e-4
