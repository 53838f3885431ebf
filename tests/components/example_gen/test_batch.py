"""Batched validation and encoding agree row for row with the per-row reference functions."""

import random

import numpy as np
import pytest

from tfx_metric_learning.components.example_gen import batch, files, rows

NAMES = ["a", "label", "b_c", "z"]
FEATURES = ["a", "b_c", "z"]
CELLS = [
    "1", " 2 ", "1e500", "-inf", "nan", "NA", "", "x", "1_000", "3.5", "0x10", "  ",
    "NaN", "inf", "1e-50", "+4", ".5", "5.", "null", "1,5", "é", "-0",
]  # fmt: skip
LABELS = ["c1", "", " c2 ", "NA", "3.0", "none", "ünï", "x" * 200]


def _hostile_lines(n, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        k = rng.random()
        if k < 0.05:
            lines.append("")
            continue
        if k < 0.1:
            lines.append("1,2")
            continue
        fields = [rng.choice(CELLS), rng.choice(LABELS), rng.choice(CELLS), rng.choice(CELLS)]
        if rng.random() < 0.1:
            fields[0] = '"' + fields[0] + '"'
        if rng.random() < 0.02:
            fields[2] = '"q,1"'
        if rng.random() < 0.02:
            fields[3] = '"unclosed'
        lines.append(",".join(fields))
    return lines


def _reference(lines):
    """Row by row, as the per-row functions do it: blank, bad (index, info), examples."""
    blank, bad, kept, examples = [], [], [], []
    for i, line in enumerate(lines):
        fields = files.split_fields(line, ",")
        if not fields or fields == [""]:
            blank.append(i)
        elif len(fields) != len(NAMES):
            bad.append((i, {"reason": rows.WRONG_FIELD_COUNT}))
        else:
            values = dict(zip(NAMES, fields, strict=True))
            features, label, info = rows.validate_row(values, FEATURES, "label")
            if features is None:
                bad.append((i, info))
            else:
                kept.append(i)
                example = rows.to_example(features, "label", label)
                examples.append(example.SerializeToString(deterministic=True))
    return blank, bad, kept, examples


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_row_gets_the_per_row_outcome_and_bytes(seed):
    lines = _hostile_lines(3000, seed)
    checked, blank = batch.validate_csv(lines, ",", NAMES, NAMES.index("label"))
    want_blank, want_bad, want_kept, want_examples = _reference(lines)
    assert blank == want_blank
    assert checked.bad == want_bad
    assert checked.kept == want_kept and len(want_kept) > 100
    reasons = {info["reason"] for _, info in checked.bad}
    assert reasons == {
        rows.WRONG_FIELD_COUNT,
        rows.MISSING_LABEL,
        rows.NON_NUMERIC,
        rows.NON_FINITE,
    }
    encoder = batch.ExampleEncoder(FEATURES, "label")
    assert encoder.encode(checked.values, checked.labels) == want_examples


def test_the_first_bad_column_in_feature_order_names_the_row():
    # a non-finite value after a non-numeric one: the non-numeric (first) column is reported
    checked, _ = batch.validate_csv(["x,c1,inf,2", "inf,c1,x,2"], ",", NAMES, 1)
    assert [info for _, info in checked.bad] == [
        {"reason": rows.NON_NUMERIC, "column": "a", "value": "x"},
        {"reason": rows.NON_FINITE, "column": "a", "value": "inf"},
    ]


@pytest.mark.parametrize("label_name", ["aaa", "label", "zzz"])
def test_encoder_bytes_equal_protobuf_for_any_label_position(label_name):
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(150)]  # entries past 127 bytes: multi-byte lengths
    values = rng.normal(size=(20, 150)).astype(np.float32)
    values[3, 7] = np.nan
    labels = [str(i % 3) * (1 + 70 * (i % 2)) for i in range(20)]
    got = batch.ExampleEncoder(names, label_name).encode(values, labels)
    for row, label, serialized in zip(values, labels, got, strict=True):
        example = rows.to_example(dict(zip(names, row.tolist(), strict=True)), label_name, label)
        assert serialized == example.SerializeToString(deterministic=True)
