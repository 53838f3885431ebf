"""A preprocessing_fn of our own: ranks within each feature's distribution, not z-scores.

Every raw feature ``x_f`` becomes its quantile in the analysed split, ``q_f(x) in [0, 1]``
(its bucket among ``BUCKETS`` quantile buckets of the present values, ``tft.quantiles`` then
``tft.apply_buckets``, divided by ``BUCKETS - 1``), centred to ``[-0.5, 0.5]``: robust to
outliers and to features of very different scales. A missing value (NaN) is imputed with the
feature's median, the middle boundary of the same quantiles. One analyzer per feature, none
fed by another: a preprocessing_fn of two phases fails in TFX 1.16's Transform on this stack
(the kit's ``fast_pipeline_run`` shows it; ``check_preprocessing_fn`` cannot). The label
passes through and gets its id in the vocabulary named ``label``, as the pipeline's contract
requires (``tfx_metric_learning/trainer_module/preprocessing.py``; ``check_preprocessing_fn``
checks it).

Selected with ``--preprocessing-fn acme_embeddings.preprocessing.preprocessing_fn``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from tfx_metric_learning.core import keys
from tfx_metric_learning.trainer_module.preprocessing import LABEL_VOCAB

BUCKETS = 16


def _column(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, Any]:
    """Quantile-ranked features, the label and its id (see the module docstring)."""
    label_column = custom_config["label_column"]
    columns = []
    for name in sorted(k for k in inputs if k != label_column):
        x = tf.cast(_column(inputs[name], float("nan")), tf.float32)
        present = tf.math.is_finite(x)
        boundaries = tft.quantiles(tf.boolean_mask(x, present), BUCKETS, epsilon=0.01)
        median = boundaries[0][BUCKETS // 2 - 1]
        filled = tf.where(present, x, tf.fill(tf.shape(x), median))
        bucket = tft.apply_buckets(filled, boundaries)
        columns.append(tf.cast(bucket, tf.float32) / (BUCKETS - 1) - 0.5)
    label = _column(inputs[label_column], "")
    return {
        keys.FEATURES: tf.stack(columns, axis=1),
        keys.LABEL: label,
        keys.LABEL_ID: tft.compute_and_apply_vocabulary(
            label, default_value=-1, vocab_filename=LABEL_VOCAB
        ),
    }
