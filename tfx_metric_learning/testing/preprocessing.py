"""``check_preprocessing_fn``: a Transform ``preprocessing_fn`` through TFT on tiny data.

The pipeline's stages downstream of Transform read its outputs by the keys of
``tfx_metric_learning.core.keys``; a ``preprocessing_fn`` of a team's own (set with
``--preprocessing-fn module.function``, ``TransformSettings.preprocessing_fn``) must keep
that contract. The check:

1. runs ``fn`` with TFT's Beam implementation (``AnalyzeAndTransformDataset``, analysing and
   transforming the same rows, as Transform does on the train split) on in-memory rows, and
   writes the transform graph (``WriteTransformFn``) and the raw schema beside it as TFX
   does. Not reproduced: TFX's Transform reads files and sets
   ``use_deep_copy_optimization=True``, under which, on this stack (TFT 1.16), a
   ``preprocessing_fn`` whose analyzers feed other analyzers (two or more phases) fails
   (``AppliedPTransform.__init__() missing ... 'environment_id'``); TFT's deep copy cannot
   copy in-memory input at all, so only a pipeline run (``fast_pipeline_run``) shows that;
2. **output contract**: ``features`` is float32 of one fixed width ``[F]``; ``label`` is the
   raw label string passed through; ``label_id`` is int64, the row's index in the vocabulary
   file ``label`` (which the Trainer reads for the class count), -1 out of vocabulary;
3. **serving**: the same rows, serialised as ``tf.Example`` and parsed with the raw feature
   spec, go through the saved graph as the exported model serves them
   (``TFTransformOutput.transform_features_layer``, ``trainer_module/export.py``), in
   requests of ``SERVING_BATCH`` rows; every output must equal what the Beam run produced
   (**training/serving skew**, ``atol``);
4. **missing values**: a served row whose every feature is NaN (the serving signature's
   "missing") gets finite ``features``.

Raw rows are what the pipeline's ExampleGen writes: one float per feature, the label as a
string. ``data`` is a CSV path (any ``fileio`` URI; an empty cell is NaN) or a list of dicts.
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

# Rows per served request: not the analysed batch, so a statistic of the batch (rather than
# of the data, an analyzer's) shows as skew.
SERVING_BATCH = 7


class PreprocessingContractError(AssertionError):
    """A preprocessing_fn broke the contract; the message lists every broken check."""


def resolve(fn: Callable | str) -> Callable:
    """``fn`` itself, or the function a dotted path ``module.function`` names."""
    if callable(fn):
        return fn
    module, _, name = str(fn).rpartition(".")
    if not module:
        raise ValueError(f"preprocessing_fn {fn!r} is not module.function")
    return getattr(importlib.import_module(module), name)


def read_rows(data: str | list[dict[str, Any]], label_column: str) -> list[dict[str, Any]]:
    """Raw rows: every column but ``label_column`` a float (empty = NaN), the label a string."""
    if not isinstance(data, str):
        return [dict(r) for r in data]
    from tfx.dsl.io import fileio

    with fileio.open(data, "r") as f:
        text = f.read()
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        rows.append(
            {
                k: (v if k == label_column else (float(v) if v.strip() else math.nan))
                for k, v in record.items()
            }
        )
    return rows


def _raw_spec(names: list[str], label_column: str) -> dict[str, Any]:
    import tensorflow as tf

    spec = {n: tf.io.FixedLenFeature([1], tf.float32) for n in names}
    spec[label_column] = tf.io.FixedLenFeature([1], tf.string)
    return spec


def _example(row: dict[str, Any], names: list[str], label_column: str) -> bytes:
    import tensorflow as tf

    feature = {
        n: tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[n])])) for n in names
    }
    feature[label_column] = tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[str(row[label_column]).encode()])
    )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def analyze_and_transform(
    fn: Callable,
    rows: list[dict[str, Any]],
    transform_dir: str,
    label_column: str = "label",
    custom_config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Runs ``fn`` through TFT's Beam implementation on ``rows``; writes the graph.

    ``custom_config`` is handed to ``fn`` as Transform hands it (with ``label_column`` set),
    when ``fn`` takes one. Returns the transformed rows (dicts of NumPy values), in order.
    """
    import functools
    import inspect

    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    names = sorted(k for k in rows[0] if k != label_column)
    spec = _raw_spec(names, label_column)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [
        {n: [float(r[n])] for n in names} | {label_column: [str(r[label_column]).encode()]}
        for r in rows
    ]
    if "custom_config" in inspect.signature(fn).parameters:
        fn = functools.partial(
            fn, custom_config={"label_column": label_column, **(custom_config or {})}
        )
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (
            instances,
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, "metadata"))
    return transformed


def check_preprocessing_fn(
    fn: Callable | str,
    data: str | list[dict[str, Any]],
    custom_config: dict[str, Any] | None = None,
    label_column: str = "label",
    transform_dir: str | None = None,
    atol: float = 1e-5,
) -> dict[str, Any]:
    """Runs the checks of the module docstring on ``fn`` (a function or ``module.function``).

    Returns ``{"rows", "features", "vocabulary_size", "max_skew", "outputs"}``; raises
    ``PreprocessingContractError`` listing every broken check.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    from tfx_metric_learning.core import keys
    from tfx_metric_learning.trainer_module.preprocessing import LABEL_VOCAB

    fn = resolve(fn)
    rows = read_rows(data, label_column)
    if len(rows) < 2:
        raise ValueError(f"check_preprocessing_fn needs at least 2 rows, got {len(rows)}")
    transform_dir = transform_dir or tempfile.mkdtemp(prefix="transform-")
    beam_rows = analyze_and_transform(fn, rows, transform_dir, label_column, custom_config)
    output = tft.TFTransformOutput(transform_dir)
    out_spec = output.transformed_feature_spec()
    found = []
    missing = [k for k in (keys.FEATURES, keys.LABEL, keys.LABEL_ID) if k not in out_spec]
    if missing:
        raise PreprocessingContractError(
            f"the outputs {sorted(out_spec)} lack {missing} (tfx_metric_learning.core.keys)"
        )
    features = out_spec[keys.FEATURES]
    width = None
    if not (
        isinstance(features, tf.io.FixedLenFeature)
        and features.dtype == tf.float32
        and len(features.shape) == 1
    ):
        found.append(f"{keys.FEATURES} must be a fixed-width float32 vector [F], got {features}")
    else:
        width = int(features.shape[0])
    if out_spec[keys.LABEL].dtype != tf.string:
        found.append(f"{keys.LABEL} must be the label string, got {out_spec[keys.LABEL]}")
    if out_spec[keys.LABEL_ID].dtype != tf.int64:
        found.append(f"{keys.LABEL_ID} must be int64, got {out_spec[keys.LABEL_ID]}")
    try:
        vocabulary = [v.decode() for v in output.vocabulary_by_name(LABEL_VOCAB)]
    except (ValueError, tf.errors.NotFoundError, OSError):
        vocabulary = []
        found.append(f"no vocabulary file {LABEL_VOCAB!r} (vocab_filename of the label ids)")
    index = {v: i for i, v in enumerate(vocabulary)}
    for i, (row, out) in enumerate(zip(rows, beam_rows, strict=True)):
        label = np.asarray(out[keys.LABEL]).ravel()[0]
        label = label.decode() if isinstance(label, bytes) else str(label)
        if label != str(row[label_column]):
            found.append(f"row {i}: {keys.LABEL} {label!r}, the raw label is {row[label_column]!r}")
            break
        if vocabulary and int(np.asarray(out[keys.LABEL_ID]).ravel()[0]) != index.get(label, -1):
            found.append(f"row {i}: {keys.LABEL_ID} is not the label's index in {LABEL_VOCAB!r}")
            break
    names = sorted(k for k in rows[0] if k != label_column)
    raw_spec = _raw_spec(names, label_column)
    layer = output.transform_features_layer()
    served = {}
    for start in range(0, len(rows), SERVING_BATCH):
        batch = [_example(r, names, label_column) for r in rows[start : start + SERVING_BATCH]]
        for key, value in layer(tf.io.parse_example(tf.constant(batch), raw_spec)).items():
            served.setdefault(key, []).append(np.asarray(value))
    served = {key: np.concatenate(parts) for key, parts in served.items()}
    skew = 0.0
    for key in (keys.FEATURES, keys.LABEL_ID):
        ours = np.asarray(served[key]).reshape(len(rows), -1).astype(np.float64)
        beam = np.stack([np.asarray(r[key]).ravel() for r in beam_rows]).astype(np.float64)
        if ours.shape != beam.shape:
            found.append(f"serving gives {key} of shape {ours.shape}, training {beam.shape}")
            continue
        diff = np.abs(np.nan_to_num(ours, nan=np.inf) - np.nan_to_num(beam, nan=np.inf))
        diff = np.where(np.isnan(diff), 0.0, diff)  # inf - inf: NaN on both sides
        skew = max(skew, float(diff.max()))
    if skew > atol:
        found.append(f"training/serving skew: served outputs differ from Beam's by {skew:g}")
    blank = dict.fromkeys(names, math.nan) | {label_column: str(rows[0][label_column])}
    nan_row = layer(
        tf.io.parse_example(tf.constant([_example(blank, names, label_column)]), raw_spec)
    )
    if not np.all(np.isfinite(np.asarray(nan_row[keys.FEATURES]))):
        found.append(f"a served row of missing values (NaN) gets non-finite {keys.FEATURES}")
    if found:
        raise PreprocessingContractError("preprocessing_fn:\n- " + "\n- ".join(found))
    return {
        "rows": len(rows),
        "features": width,
        "vocabulary_size": len(vocabulary),
        "max_skew": skew,
        "outputs": sorted(out_spec),
    }
