"""The split's pure parts, without Beam: hashes, per-class cutoffs, class roles."""

import numpy as np

from tfx_metric_learning.components.example_gen import split_plan, transforms
from tfx_metric_learning.components.example_gen.report import RowCounts
from tfx_metric_learning.components.example_gen.split_plan import EVAL, VALID


def test_row_hash_depends_on_seed_and_row_only():
    assert transforms.row_hash(1, b"row") == transforms.row_hash(1, b"row")
    assert transforms.row_hash(1, b"row") != transforms.row_hash(2, b"row")
    assert transforms.row_hash(1, b"row") != transforms.row_hash(1, b"other")
    assert 0 <= transforms.row_hash(7, b"x") < 2**64


def test_cutoffs_hold_out_the_planned_counts_of_each_class():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 101):
        hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64)
        parts = [hashes[: n // 2], hashes[n // 2 :]]  # in several chunks, any order
        label, (eval_cut, valid_cut) = transforms.cutoffs(("c", parts), 0.3, 0.2)
        k_eval = split_plan.eval_count(n, 0.3)
        k_valid = split_plan.eval_count(n - k_eval, 0.2)
        assert label == "c"
        assert int((hashes < eval_cut).sum()) == k_eval
        assert int(((hashes >= eval_cut) & (hashes < valid_cut)).sum()) == k_valid
        _, (eval_only, same) = transforms.cutoffs(("c", parts), 0.3, 0.0)
        assert eval_only == same == eval_cut  # no validation fraction: no valid rows


def test_class_roles_take_the_chosen_eval_classes_and_validation_from_the_rest():
    counts = RowCounts(classes={str(i): 10 for i in range(10)})
    roles = transforms.class_roles(counts, ["7", "3"], 0.25)
    assert roles[EVAL] == ["3", "7"]
    train = [c for c in counts.classes if c not in {"3", "7"}]
    assert roles[VALID] == split_plan.default_validation_classes(train, 0.25)
    assert not set(roles[VALID]) & {"3", "7"}
