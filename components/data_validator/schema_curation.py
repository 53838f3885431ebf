"""A curated schema: the one SchemaGen infers, made fit to gate every later span.

What changes from the inferred schema (``curate``):

- the label keeps its type and presence but loses its value domain: in metric learning new
  classes (identities, products) keep arriving, and an enumeration of today's would reject
  tomorrow's data; its class shares get an L-infinity drift comparator instead;
- each numeric feature gets a Jensen-Shannon divergence drift comparator (TFDV compares a
  span's histogram with the previous accepted span's), except features that are zero in more
  than ``SPARSE_ZERO_FRACTION`` of the rows: their histograms are too sparse for the
  divergence to mean anything (measured on the digits split into spans of ~450 rows: up to
  1.0 between two spans of the same data, against at most 0.054 for the other features,
  while doubling a feature's scale gave 0.31-0.37 and tripling it 0.42-0.49);
- every numeric feature's values must not be infinite; a missing value (an empty cell, ``NA``,
  NaN: ExampleGen writes it as NaN, and Transform imputes the feature's mean) is allowed up to
  a threshold per feature, written in the feature's annotation as the tag
  ``max_missing_fraction=F`` (``MISSING_TAG``): the fraction of rows missing it in the data
  the schema is inferred from, plus ``MISSING_MARGIN``. TFDV has no such threshold (it counts
  a NaN as a present value, and its ``presence.min_fraction`` must stay 1.0 for Transform to
  parse the feature as fixed-length), so the DataValidator checks the tag itself
  (``executor.missing_value_anomalies``); a feature without the tag is left to TFDV.

The file is TFDV's text schema: thresholds can be edited per feature, comparators added or
removed, and the file kept in version control.
"""

from __future__ import annotations

import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.dsl.io import fileio

SPARSE_ZERO_FRACTION = 0.8
# how much larger a span's fraction of missing values per feature may be than the fraction
# observed in the data the schema was inferred from (one empty cell in 120 rows is 0.008)
MISSING_MARGIN = 0.05
# a feature's annotation tag "max_missing_fraction=F": at most F of a span's rows may lack it
MISSING_TAG = "max_missing_fraction="


def max_missing_fraction(feature: schema_pb2.Feature) -> float | None:
    """The feature's ``max_missing_fraction=F`` tag's F (None without the tag).

    A tag whose F is not a number in [0, 1], or a feature tagged twice, is a ``ValueError``
    naming the feature and the tag.
    """
    found = [t for t in feature.annotation.tag if t.startswith(MISSING_TAG)]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(
            f"feature {feature.name!r} has {len(found)} tags {MISSING_TAG}...: keep one"
        )
    text = found[0][len(MISSING_TAG) :]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"feature {feature.name!r}: annotation tag {found[0]!r} must give a fraction in [0, 1]"
        )
    return value


def set_max_missing_fraction(feature: schema_pb2.Feature, value: float) -> None:
    """Sets the feature's ``max_missing_fraction`` tag to ``value`` (4 decimals)."""
    kept = [t for t in feature.annotation.tag if not t.startswith(MISSING_TAG)]
    del feature.annotation.tag[:]
    feature.annotation.tag.extend([*kept, f"{MISSING_TAG}{value:.4f}"])


def present_fraction(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> float:
    """The fraction of the first dataset's rows with a usable value of feature ``name``.

    A row without the feature and a NaN value (TFDV's histogram ``num_nan``; one value per
    row in this pipeline's examples) both count as missing. 1.0 for a feature not in the
    statistics' numeric features or a dataset of no rows.
    """
    dataset = stats.datasets[0]
    for feature in dataset.features:
        step = feature.path.step[0] if feature.path.step else feature.name
        if step != name or not feature.HasField("num_stats"):
            continue
        rows = dataset.num_examples
        if not rows:
            return 1.0
        common = feature.num_stats.common_stats
        nan = max((h.num_nan for h in feature.num_stats.histograms), default=0)
        return max(0.0, (common.num_non_missing - nan) / rows)
    return 1.0


def _numeric_stats(stats: statistics_pb2.DatasetFeatureStatisticsList) -> dict[str, object]:
    out = {}
    for dataset in stats.datasets:
        for feature in dataset.features:
            name = feature.path.step[0] if feature.path.step else feature.name
            if feature.HasField("num_stats"):
                out[name] = feature.num_stats
    return out


def curate(
    schema: schema_pb2.Schema,
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    label: str,
    drift_threshold: float,
    label_drift_threshold: float,
) -> tuple[schema_pb2.Schema, list[str]]:
    """``(curated copy of schema, features left without a drift comparator)``."""
    curated = schema_pb2.Schema()
    curated.CopyFrom(schema)
    numeric = _numeric_stats(stats)
    unchecked = []
    for feature in curated.feature:
        if feature.name == label:
            feature.ClearField("domain_info")  # any named, string or int domain
            feature.drift_comparator.infinity_norm.threshold = label_drift_threshold
            continue
        num = numeric.get(feature.name)
        if feature.type != schema_pb2.FLOAT or num is None:
            continue
        feature.float_domain.disallow_inf = True  # NaN = missing: counted, not refused
        observed = 1.0 - present_fraction(stats, feature.name)
        set_max_missing_fraction(feature, min(1.0, observed + MISSING_MARGIN))
        rows = num.common_stats.num_non_missing
        if rows and num.num_zeros / rows > SPARSE_ZERO_FRACTION:
            unchecked.append(feature.name)
            continue
        feature.drift_comparator.jensen_shannon_divergence.threshold = drift_threshold
    # the string domain of the label is top-level in inferred schemas
    kept = [d for d in curated.string_domain if d.name != label]
    del curated.string_domain[:]
    curated.string_domain.extend(kept)
    return curated, unchecked


def write_curated(
    schema: schema_pb2.Schema,
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    label: str,
    drift_threshold: float,
    label_drift_threshold: float,
    path: str,
) -> dict:
    """Curates ``schema`` (``curate``) and writes it to ``path`` as TFDV's text schema.

    Written to ``path.tmp`` and renamed over ``path`` (any filesystem ``fileio`` knows), so a
    killed run leaves the previous file whole. Returns ``{"schema_file", "features",
    "drift_checked", "drift_unchecked"}``.
    """
    curated, unchecked = curate(schema, stats, label, drift_threshold, label_drift_threshold)
    fileio.makedirs(os.path.dirname(path))
    tmp = f"{path}.tmp"
    tfdv.write_schema_text(curated, tmp)
    fileio.rename(tmp, path, overwrite=True)
    return {
        "schema_file": path,
        "features": len(curated.feature),
        "drift_checked": [f.name for f in curated.feature if f.HasField("drift_comparator")],
        "drift_unchecked": unchecked,
    }
