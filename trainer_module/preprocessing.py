"""Transform's ``preprocessing_fn``: one row in, one row out.

Raw rows hold numeric features (one float each; NaN marks a missing value) and a string label.
The output of every row is:

- ``features``: float32 ``[F]``, each raw feature (in sorted name order) scaled with the
  statistics of its present values over the analysed split, by the ``scaling`` setting
  (``transform_settings``): ``standard`` z-scores it, ``(x - mean_f) / std_f``; ``centered``
  divides every centred feature by one scale, ``(x - mean_f) / sqrt(mean_g var_g)`` (the root
  mean variance over features), which keeps the features' relative weight (cosine on centred
  pixels rather than on pixels each stretched to unit variance). A missing value is imputed
  with the mean, so it becomes 0 (a constant feature becomes 0 too). A value that
  is not finite (NaN, +inf, -inf; ExampleGen drops training rows with inf, so only served
  rows have them) counts as missing, and a z-score is clipped to ``[-Z_CLIP, Z_CLIP]``: a
  huge finite input (``1e38``) cannot overflow the encoder, so every served row gets a unit
  embedding;
- ``label``: the raw label string, passed through (retrieval compares labels by equality, so
  classes never seen in training keep their identity);
- ``label_id``: int64 index in the label vocabulary of the analysed split (-1 if unseen), for
  the classification losses.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from tfx_metric_learning.core import keys
from tfx_metric_learning.trainer_module.transform_settings import TransformSettings

LABEL_VOCAB = "label"
MISSING_COUNT_KEY = "missing_count"
# Bound of a z-scored feature: values this many standard deviations out are equally far.
Z_CLIP = 1e4


def feature_names(raw_keys: list[str] | Any, label_column: str) -> list[str]:
    """The raw feature columns, in the fixed order they take in the ``features`` vector."""
    return sorted(k for k in raw_keys if k != label_column)


def raw_label_column(raw_feature_spec: dict[str, Any]) -> str:
    """The raw label feature: the only string feature of the raw data.

    The pipeline's ExampleGen writes every feature as a float and the label as bytes, so the
    label needs no setting downstream of Transform (``run_fn`` leaves it out of the serving
    signatures with this).
    """
    names = sorted(n for n, spec in raw_feature_spec.items() if spec.dtype == tf.string)
    if len(names) != 1:
        raise ValueError(
            f"expected exactly one string feature (the label) in the raw data, got {names}; "
            f"features must be numeric"
        )
    return names[0]


def _dense_column(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """A ``[B]`` float32 column from a raw feature (absent values become NaN)."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=float("nan")
        )
    x = tf.cast(x, tf.float32)
    return tf.reshape(x, [-1])


def _label_column(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), "")
    if x.dtype != tf.string:
        x = tf.strings.as_string(x)
    return tf.reshape(x, [-1])


def _finite_or(x: tf.Tensor, value: float) -> tf.Tensor:
    return tf.where(tf.math.is_finite(x), x, tf.fill(tf.shape(x), value))


def preprocessing_fn(
    inputs: dict[str, tf.Tensor], custom_config: dict[str, Any] | None = None
) -> dict[str, tf.Tensor]:
    """Imputes and scales the features into one vector; keeps and indexes the label.

    ``custom_config["label_column"]`` names the raw label feature (default ``"label"``); its
    other keys are ``TransformSettings`` (unset ones take their defaults).
    Missing values (NaN, inf or absent) are replaced by the feature's mean over the analysed
    split; the number of values imputed per row is output as ``missing_count``. All
    analyzers run in one phase (one pass over the data).
    """
    config = dict(custom_config or {})
    label_column = config.pop("label_column", keys.LABEL)
    settings = TransformSettings.from_dict(config, source="Transform's custom_config")
    if label_column not in inputs:
        raise ValueError(
            f"label column {label_column!r} is not in the data; columns: {sorted(inputs)}"
        )
    names = feature_names(inputs.keys(), label_column)
    if not names:
        raise ValueError("the data has no feature columns besides the label")
    x = tf.stack([_dense_column(inputs[n]) for n in names], axis=1)  # [B, F]
    present = tf.math.is_finite(x)
    # statistics of the present values only, in one analyzer phase
    observed = tf.SparseTensor(
        indices=tf.where(present),
        values=tf.boolean_mask(x, present),
        dense_shape=tf.shape(x, out_type=tf.int64),
    )
    means = _finite_or(tft.mean(observed, reduce_instance_dims=False), 0.0)
    variances = _finite_or(tft.var(observed, reduce_instance_dims=False), 0.0)
    if settings.scaling == "centered":
        scale = tf.sqrt(tf.reduce_mean(variances))
        stds = tf.fill(tf.shape(variances), tf.where(scale > 0, scale, 1.0))
    else:
        stds = tf.sqrt(variances)
    safe_stds = tf.where(stds > 0, stds, tf.ones_like(stds))
    # mean imputation, then z-scoring: a missing value becomes exactly 0
    scaled = tf.clip_by_value((x - means) / safe_stds, -Z_CLIP, Z_CLIP)
    features = tf.where(present, scaled, tf.zeros_like(x))
    label = _label_column(inputs[label_column])
    label_id = tft.compute_and_apply_vocabulary(label, default_value=-1, vocab_filename=LABEL_VOCAB)
    return {
        keys.FEATURES: tf.ensure_shape(features, [None, len(names)]),
        keys.LABEL: label,
        keys.LABEL_ID: tf.cast(label_id, tf.int64),
        MISSING_COUNT_KEY: tf.reduce_sum(1 - tf.cast(present, tf.int64), axis=1),
    }
