"""The curated schema catches a feature recorded in other units and lets new classes through."""

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from tfx_metric_learning.components.data_validator.schema_curation import (
    MISSING_MARGIN,
    SPARSE_ZERO_FRACTION,
    curate,
    max_missing_fraction,
    set_max_missing_fraction,
    write_curated,
)

LABEL = "label"


CLASSES = tuple("abcdefghij")


def span(seed, rows=400, scale=1.0, labels=CLASSES):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "weight": rng.normal(70.0, 10.0, rows) * scale,
            "height": rng.normal(170.0, 8.0, rows),
            # zero in 95% of the rows: too sparse for a divergence between spans
            "rare": np.where(rng.random(rows) < 0.95, 0.0, rng.random(rows)),
            LABEL: rng.choice(list(labels), rows).astype(object),
        }
    )
    return tfdv.generate_statistics_from_dataframe(frame)


def curated_schema():
    stats = span(0)
    schema = tfdv.infer_schema(stats)
    return curate(schema, stats, LABEL, drift_threshold=0.2, label_drift_threshold=0.2)


def test_comparators_go_to_dense_numeric_features_and_the_label():
    schema, unchecked = curated_schema()
    by_name = {f.name: f for f in schema.feature}
    assert by_name["weight"].drift_comparator.jensen_shannon_divergence.threshold == 0.2
    # NaN is a missing value (imputed): allowed up to a threshold per feature, not refused
    height = by_name["height"]
    assert height.float_domain.disallow_inf and not height.float_domain.disallow_nan
    assert max_missing_fraction(height) == MISSING_MARGIN
    assert height.presence.min_fraction == 1.0  # Transform parses it as fixed-length
    assert unchecked == ["rare"] and SPARSE_ZERO_FRACTION < 0.95
    assert not by_name["rare"].HasField("drift_comparator")
    label = by_name[LABEL]
    assert label.drift_comparator.infinity_norm.threshold == 0.2
    assert label.WhichOneof("domain_info") is None  # no enumeration of the classes
    assert not [d for d in schema.string_domain if d.name == LABEL]


def test_a_scale_change_is_drift_and_another_sample_is_not():
    schema, _ = curated_schema()
    previous = span(0)
    same = tfdv.validate_statistics(span(1), schema, previous_statistics=previous)
    assert not same.anomaly_info
    heavier = tfdv.validate_statistics(span(2, scale=3.0), schema, previous_statistics=previous)
    assert set(heavier.anomaly_info) == {"weight"}
    assert "Jensen-Shannon" in heavier.anomaly_info["weight"].short_description


def test_new_classes_pass_but_a_shift_of_the_class_shares_is_drift():
    schema, _ = curated_schema()
    previous = span(0)
    new_classes = tfdv.validate_statistics(
        span(3, labels=(*CLASSES, "k")), schema, previous_statistics=previous
    )
    assert LABEL not in new_classes.anomaly_info  # the new class holds ~1/11 < 0.2
    # without the curation, the inferred schema rejects a class it has not seen
    inferred = tfdv.infer_schema(previous)
    unknown = tfdv.validate_statistics(span(3, labels=(*CLASSES, "z")), inferred)
    assert LABEL in unknown.anomaly_info
    one_class = tfdv.validate_statistics(
        span(4, labels=("a",)), schema, previous_statistics=previous
    )
    assert LABEL in one_class.anomaly_info


def test_the_missing_value_threshold_starts_from_what_the_data_shows():
    stats = span(0)
    frame_rows = 400
    # a quarter of "weight" missing in the data the schema is inferred from
    rng = np.random.default_rng(0)
    weight = rng.normal(70.0, 10.0, frame_rows)
    weight[::4] = np.nan
    stats = tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"weight": weight, LABEL: rng.choice(list(CLASSES), frame_rows)})
    )
    schema, _ = curate(tfdv.infer_schema(stats), stats, LABEL, 0.2, 0.2)
    (weight_feature,) = [f for f in schema.feature if f.name == "weight"]
    assert max_missing_fraction(weight_feature) == 0.25 + MISSING_MARGIN


def test_a_hand_edited_threshold_is_read_and_a_bad_one_named():
    schema, _ = curated_schema()
    (height,) = [f for f in schema.feature if f.name == "height"]
    set_max_missing_fraction(height, 0.5)
    assert max_missing_fraction(height) == 0.5
    assert len(height.annotation.tag) == 1
    height.annotation.tag[:] = ["max_missing_fraction=lots"]
    with pytest.raises(ValueError, match="feature 'height': annotation tag"):
        max_missing_fraction(height)


def test_the_curated_schema_is_written_whole_over_the_old_file(tmp_path):
    stats = span(0)
    schema = tfdv.infer_schema(stats)
    path = tmp_path / "schema" / "schema.pbtxt"
    path.parent.mkdir()
    path.write_text("an older schema")
    written = write_curated(schema, stats, LABEL, 0.2, 0.2, str(path))
    expected, unchecked = curate(schema, stats, LABEL, 0.2, 0.2)
    assert tfdv.load_schema_text(str(path)) == expected
    assert sorted(p.name for p in path.parent.iterdir()) == ["schema.pbtxt"]  # no .tmp left
    assert written["drift_unchecked"] == unchecked == ["rare"]
    assert sorted(written["drift_checked"]) == ["height", LABEL, "weight"]
    assert written["features"] == len(expected.feature)
