import numpy as np
import pytest

from tfx_metric_learning.components.pair_gen import sampling


def test_class_plan_maps_indices_to_rows_and_back():
    blocks = [("f0-b0", 4, {"x": 3, "y": 1}), ("f0-b1", 3, {"y": 2, "z": 1})]
    plan = sampling.ClassPlan.from_block_counts(blocks)
    assert plan.labels == ["x", "y", "z"] and plan.sizes.tolist() == [3, 3, 1]
    block0 = plan.class_ids(["y", "x", "x", "x"])
    block1 = plan.class_ids(["z", "y", "y"])
    g0, g1 = plan.global_index(0, block0), plan.global_index(1, block1)
    assert g0.tolist() == [3, 0, 1, 2] and g1.tolist() == [6, 4, 5]
    for block, classes, g in ((0, block0, g0), (1, block1, g1)):
        located_block, cls, occurrence = plan.locate(g)
        assert (located_block == block).all() and (cls == classes).all()
        rows = sampling.BlockRows(classes).rows(cls, occurrence)
        assert rows.tolist() == list(range(len(classes)))


def test_class_plan_orders_blocks_by_id_and_classes_by_label():
    blocks = [
        ("f1-b0", 2, {"w": 2}),
        ("f0-b1", 3, {"y": 2, "z": 1}),
        ("f0-b0", 4, {"x": 3, "y": 1}),
    ]
    plan = sampling.ClassPlan.from_block_counts(blocks)
    assert plan.block_ids == ["f0-b0", "f0-b1", "f1-b0"] and plan.block_rows.tolist() == [4, 3, 2]
    assert plan.labels == ["w", "x", "y", "z"] and plan.sizes.tolist() == [2, 3, 3, 1]
    assert plan.offsets.tolist() == [0, 2, 5, 8] and plan.total == 9
    assert plan.class_of(np.arange(9)).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_draws_are_uniform_exclusive_and_deterministic():
    u = sampling.uniforms(7, 50_000)
    assert (u >= 0).all() and (u < 1).all()
    assert np.array_equal(u[100:200], sampling.uniforms(7, 100, start=100))  # counter-based
    assert not np.array_equal(u, sampling.uniforms(8, 50_000))
    counts = np.bincount(sampling.below(u, 5), minlength=5)
    assert counts.min() > 9_500 and counts.max() < 10_500  # 10,000 expected each
    plan = sampling.ClassPlan.from_block_counts([("b", 10, {"a": 4, "b": 6})])
    own = np.full(50_000, 5)  # row 1 of class "b" (indices 4..9)
    positives = np.bincount(plan.draw_positive(u, own), minlength=10)
    assert (
        positives[:4].sum() == 0 and positives[5] == 0 and positives[[4, 6, 7, 8, 9]].min() > 9_500
    )
    negatives = np.bincount(plan.draw_negative(u, own), minlength=10)
    assert negatives[4:].sum() == 0 and negatives[:4].min() > 12_000  # 12,500 expected each
    picks = sampling.distinct(3, 10_000_000, 5)
    assert len(set(picks)) == 5 and picks == sampling.distinct(3, 10_000_000, 5)
    assert sorted(sampling.distinct(4, 10, 10)) == list(range(10))


def test_a_ten_million_row_class_is_sampled_over_all_its_blocks():
    """The plan is counts only: a 10M-row class in 500 blocks, drawn from uniformly."""
    blocks = [(f"{b:06d}", 20_000, {"big": 19_990, "small": 10}) for b in range(500)]
    plan = sampling.ClassPlan.from_block_counts(blocks)
    assert plan.sizes.tolist() == [9_995_000, 5_000] and len(plan.entry_class) == 1000
    anchors = np.full(200_000, 1234)  # one row of "big"
    block, cls, occurrence = plan.locate(plan.draw_positive(sampling.uniforms(5, 200_000), anchors))
    assert (cls == 0).all() and (occurrence < 19_990).all()
    counts = np.bincount(block, minlength=500)
    assert ((counts - 400) ** 2 / 400).sum() < 620  # chi-square, df 499: p < 0.001 beyond 600
    negatives = plan.draw_negative(sampling.uniforms(6, 10_000), anchors[:10_000])
    assert (plan.class_of(negatives) == 1).all() and len(np.unique(negatives)) > 3_000


def test_by_block_groups_indices_by_block_keeping_their_order():
    plan = sampling.ClassPlan.from_block_counts(
        [("f0-b0", 4, {"x": 3, "y": 1}), ("f0-b1", 3, {"y": 2, "z": 1})]
    )
    g = np.array([6, 0, 4, 3, 1])  # z(b1), x(b0), y(b1), y(b0), x(b0)
    blocks, order = plan.by_block(g)
    assert blocks.tolist() == [1, 0, 1, 0, 0]
    assert g[order].tolist() == [0, 3, 1, 6, 4]
    empty_blocks, empty_order = plan.by_block(np.array([], np.int64))
    assert len(empty_blocks) == len(empty_order) == 0


MASK = (1 << 64) - 1


def splitmix64(state, count, start=0):
    """Vigna's SplitMix64 in plain Python integers: outputs ``start+1 .. start+count``."""
    out = []
    for i in range(start + 1, start + count + 1):
        z = (state + i * 0x9E3779B97F4A7C15) & MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def test_uniforms_are_the_splitmix64_stream():
    # the generator's published first output for the seed 1234567
    assert splitmix64(1234567, 1) == [6457827717110365317]
    for key, start in ((1234567, 0), (sampling.stable_hash("seed", "train", 3), 1000)):
        expected = [(z >> 11) / 2.0**53 for z in splitmix64(key, 6, start)]
        assert sampling.uniforms(key, 6, start).tolist() == expected


def test_below_maps_the_unit_interval_onto_whole_numbers():
    top = np.nextafter(1.0, 0.0)
    assert sampling.below(np.array([0.0, 1 / 3, 0.5, top]), 3).tolist() == [0, 1, 1, 2]
    assert sampling.below(np.array([top, top]), np.array([1, 2**62 + 1])).tolist() == [
        0,
        2**62 - 512,  # the float product, truncated: never n or more
    ]
    # far beyond 2**53, where n itself rounds up as a float, the product still stays below n
    n = np.array([2**53 + 3, 2**60 + 2**7 - 1, 2**62 - 1])
    assert (sampling.below(np.full(3, top), n) < n).all()


def test_stable_hash_separates_its_parts():
    import hashlib

    assert sampling.stable_hash("a", "b") == int.from_bytes(
        hashlib.sha256(b"a\0b").digest()[:8], "big"
    )
    assert sampling.stable_hash("a", "b") != sampling.stable_hash("ab")


def test_distinct_draws_each_value_once_and_no_more_than_there_are():
    assert sorted(sampling.distinct(7, 5, 5)) == [0, 1, 2, 3, 4]
    assert len(set(sampling.distinct(7, 10**12, 50))) == 50
    with pytest.raises(ValueError, match="cannot draw 6 distinct values from 5"):
        sampling.distinct(7, 5, 6)


@pytest.mark.parametrize(
    "mode, sizes, expected",
    [
        ("none", [1, 2, 3], 6),
        ("pairs", [1, 2, 3], 2 * 5),  # the single row has no positive
        ("triplets", [4], 0),  # one class: no negative
        ("triplets_k", [2, 2], 2 * 4),
    ],
)
def test_examples_built_per_anchor_mode(mode, sizes, expected):
    assert sampling.examples_built(mode, sizes, 2, 0, 0, 0) == expected


def test_examples_built_for_pk_batches_at_their_bounds():
    # P = 2 classes of K = 3 rows: 6 rows a batch
    assert sampling.examples_built("pk_batches", [3, 3, 2], 0, 2, 3, 0) == 6  # 8 // 6 batches
    assert sampling.examples_built("pk_batches", [3, 2, 2], 0, 2, 3, 0) == 0  # 1 class has K
    assert sampling.examples_built("pk_batches", [4, 4, 4], 0, 2, 3, 5) == 30  # 5 batches asked
    assert sampling.examples_built("pk_batches", [6, 6], 0, 2, 3, 0) == 12
