"""The Trainer's export: the encoder saved with the Transform graph and raw-feature signatures.

- ``serving_default``: one float32 ``[N]`` tensor per raw feature (NaN = missing) ->
  ``{"embedding": [N, D]}``, L2-normalised;
- ``serve_examples``: serialized tf.Examples -> ``{"embedding"}`` (batch inference); a
  feature absent from an example is missing, as NaN is for ``serving_default``;
- ``transform_features``: serialized tf.Examples -> Transform's outputs, as TFX examples do.

Missing and non-finite inputs (NaN, +-inf, an absent feature) are imputed with the training
mean, and huge ones are clipped (``preprocessing``): every row gets a unit embedding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from tfx_metric_learning.core import keys
from tfx_metric_learning.trainer_module import model as model_lib
from tfx_metric_learning.trainer_module import preprocessing


def missing_as_nan(raw_spec: dict[str, Any]) -> dict[str, Any]:
    """The raw feature spec with NaN as the default of every fixed-length float feature.

    An example without the feature then parses as missing (NaN) instead of failing, which is
    what ``serving_default`` means by NaN.
    """
    out = dict(raw_spec)
    for name, spec in raw_spec.items():
        if isinstance(spec, tf.io.FixedLenFeature) and spec.dtype == tf.float32:
            size = int(np.prod(spec.shape)) if spec.shape else 0
            default = [math.nan] * size if spec.shape else math.nan
            out[name] = tf.io.FixedLenFeature(spec.shape, spec.dtype, default_value=default)
    return out


def export_serving_model(
    encoder: tf.keras.Model,
    tft_output: tft.TFTransformOutput,
    export_dir: str,
) -> None:
    """Saves ``encoder`` with the Transform graph and the three raw-feature signatures.

    The signatures are traced without AutoGraph (they hold no Python control flow on
    tensors) and Keras' per-layer call traces are not saved (``save_traces=False``): the
    model is served and warm-started through its signatures and variables, never rebuilt
    as Keras layers, and the traces took most of the export's time (8 s of 9 on the demo).
    """
    encoder.tft_layer = tft_output.transform_features_layer()
    raw_spec = missing_as_nan(tft_output.raw_feature_spec())
    feature_spec = dict(raw_spec)
    feature_spec.pop(preprocessing.raw_label_column(raw_spec))
    names = sorted(feature_spec)

    def embed(raw_features):
        transformed = encoder.tft_layer(raw_features)
        return {model_lib.EMBEDDING_KEY: encoder(transformed[keys.FEATURES])}

    def reshape_for(name: str, column: tf.Tensor) -> tf.Tensor:
        shape = feature_spec[name].shape
        return tf.reshape(column, [-1, *shape]) if shape else tf.reshape(column, [-1])

    @tf.function(
        input_signature=[{n: tf.TensorSpec([None], tf.float32, name=n) for n in names}],
        autograph=False,
    )
    def serve_raw(features):
        return embed({n: reshape_for(n, features[n]) for n in names})

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def serve_examples(serialized):
        return embed(tf.io.parse_example(serialized, feature_spec))

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def transform_features(serialized):
        return encoder.tft_layer(tf.io.parse_example(serialized, raw_spec))

    encoder.save(
        export_dir,
        save_format="tf",
        save_traces=False,
        signatures={
            "serving_default": serve_raw.get_concrete_function(),
            "serve_examples": serve_examples.get_concrete_function(),
            "transform_features": transform_features.get_concrete_function(),
        },
    )
