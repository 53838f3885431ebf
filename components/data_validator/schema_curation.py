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
- every numeric feature's values must be finite (no NaN or infinity).

The file is TFDV's text schema: thresholds can be edited per feature, comparators added or
removed, and the file kept in version control.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

SPARSE_ZERO_FRACTION = 0.8


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
        feature.float_domain.disallow_nan = True
        feature.float_domain.disallow_inf = True
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
