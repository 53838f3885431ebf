import numpy as np

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
