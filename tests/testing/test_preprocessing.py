"""check_preprocessing_fn: the built-in preprocessing_fn passes; skew and a broken contract
are named."""

import pytest
import tensorflow as tf
import tensorflow_transform as tft

from tfx_metric_learning.testing import PreprocessingContractError, check_preprocessing_fn

BUILT_IN = "tfx_metric_learning.trainer_module.preprocessing.preprocessing_fn"


def _columns(inputs):
    return tf.concat([tf.cast(inputs[k], tf.float32) for k in sorted(inputs) if k != "label"], 1)


def batch_centred_fn(inputs):
    """Centres with the batch's mean instead of the data's (an analyzer): serving skew."""
    x = _columns(inputs)
    label = tf.reshape(inputs["label"], [-1])
    return {
        "features": x - tf.reduce_mean(x, axis=0),
        "label": label,
        "label_id": tft.compute_and_apply_vocabulary(label, vocab_filename="label"),
    }


def no_label_id_fn(inputs):
    return {"features": _columns(inputs), "label": tf.reshape(inputs["label"], [-1])}


@pytest.mark.parametrize("scaling", ["standard", "centered"])
def test_the_built_in_preprocessing_fn_passes(many_class_csv_file, scaling):
    report = check_preprocessing_fn(BUILT_IN, many_class_csv_file, {"scaling": scaling})
    assert report["features"] == 16 and report["vocabulary_size"] == 40 and report["rows"] == 400


def test_a_batch_statistic_is_named_as_skew(many_class_csv_file):
    with pytest.raises(PreprocessingContractError, match="training/serving skew"):
        check_preprocessing_fn(batch_centred_fn, many_class_csv_file)


def test_a_missing_output_is_named(many_class_csv_file):
    with pytest.raises(PreprocessingContractError, match=r"lack \['label_id'\]"):
        check_preprocessing_fn(no_label_id_fn, many_class_csv_file)
