import pytest

from tfx_metric_learning.components.example_gen import split_plan


def test_seen_classes_plan_puts_at_least_one_row_on_each_side():
    assert [split_plan.eval_count(n, 0.3) for n in (1, 2, 3, 4, 5, 10)] == [0, 1, 1, 1, 2, 3]
    assert split_plan.min_rows_for_eval_pairs(0.3) == 5
    assert split_plan.min_rows_for_eval_pairs(0.5) == 3
    train, evaluation = split_plan.plan_splits({"a": 10, "b": 1}, "seen_classes", 0.3)
    assert train == {"a": 7, "b": 1} and evaluation == {"a": 3}


def test_unseen_classes_plan_holds_out_whole_classes():
    counts = {str(i): 5 for i in range(10)}
    train, evaluation = split_plan.plan_splits(counts, "unseen_classes", 0.3)
    assert sorted(evaluation) == ["5", "6", "7", "8", "9"] and len(train) == 5
    train, evaluation = split_plan.plan_splits(counts, "unseen_classes", 0.3, ["0", "1"])
    assert sorted(evaluation) == ["0", "1"]


def test_plan_problems_name_the_reason():
    def one(counts, protocol="seen_classes", fraction=0.3, chosen=None):
        found = split_plan.plan_problems(counts, protocol, fraction, chosen)
        assert len(found) == 1, found
        return found[0]

    assert "no class with 2 or more rows" in one({f"c{i}": 3 for i in range(200)})
    assert "at least 5 rows each" in one({f"c{i}": 3 for i in range(200)})
    assert "every class has fewer than 2 rows" in one({f"c{i}": 1 for i in range(9)})
    assert "do not occur" in one({"a": 5, "b": 5}, "unseen_classes", chosen=["z"])
    assert "split 'train' has 0 class" in one({"a": 5, "b": 5}, "unseen_classes", chosen=["a", "b"])
    assert "split 'eval' has 1 class" in one({"a": 5, "b": 5, "c": 5}, "unseen_classes")
    assert split_plan.plan_problems({"a": 10, "b": 10}, "seen_classes", 0.3) == []


def test_validation_split_takes_training_rows_never_eval_rows():
    counts = {"a": 10, "b": 20, "c": 3}
    train, evaluation = split_plan.plan_splits(counts, "seen_classes", 0.3)
    kept, valid = split_plan.plan_validation(train, "seen_classes", 0.25)
    for label, n in counts.items():
        n_train = n - evaluation[label]
        assert valid[label] == split_plan.eval_count(n_train, 0.25)
        assert kept[label] + valid[label] + evaluation[label] == n
    assert split_plan.plan_validation(train, "seen_classes", 0.0) == (train, {})


def test_unseen_validation_holds_out_whole_upper_training_classes():
    counts = {str(i): 10 for i in range(10)}
    train, evaluation = split_plan.plan_splits(counts, "unseen_classes", 0.3)
    kept, valid = split_plan.plan_validation(train, "unseen_classes", 0.2)
    assert sorted(valid) == ["3", "4"] and sorted(kept) == ["0", "1", "2"]
    assert not set(valid) & set(evaluation)
    # a larger share, and at least 2 classes whatever the share
    assert split_plan.default_validation_classes([str(i) for i in range(20)], 0.3) == [
        str(i) for i in range(14, 20)
    ]
    assert split_plan.default_validation_classes(["x", "y", "z", "w"], 0.01) == ["y", "z"]
    assert split_plan.default_validation_classes(["x", "y"], 0.0) == []


def test_validation_problems_name_the_split_and_the_remedy():
    counts = {str(i): 10 for i in range(6)}
    found = split_plan.plan_problems(counts, "unseen_classes", 0.3, validation_fraction=0.2)
    assert "needs at least 4 training classes" in found[0] and "has 3 (0, 1, 2)" in found[0]
    assert "--validation-fraction 0" in found[0]
    assert split_plan.plan_problems(counts, "unseen_classes", 0.3, validation_fraction=0.0) == []
    small = {"a": 6, "b": 6}  # 2 eval rows each, 4 training rows: 1 to validate on at 0.2
    found = split_plan.plan_problems(small, "seen_classes", 0.3, validation_fraction=0.2)
    assert "split 'valid' has 2 class(es) and 0 with 2 or more rows" in found[0]
    assert split_plan.plan_problems(small, "seen_classes", 0.3, validation_fraction=0.5) == []


def test_numeric_labels_sort_by_value_before_the_others():
    labels = ["b", "10", "a", "2", "-1.5"]
    assert sorted(labels, key=split_plan.class_sort_key) == ["-1.5", "2", "10", "a", "b"]


def test_eval_count_leaves_one_row_to_train_on_at_any_fraction():
    assert [split_plan.eval_count(n, 0.9) for n in (2, 3, 4, 10)] == [1, 2, 3, 9]
    assert split_plan.eval_count(4, 0.99) == 3


def test_long_class_lists_show_the_first_20_and_count_the_rest():
    labels = [f"c{i:02d}" for i in range(21)]
    found = split_plan.unknown_eval_classes({"a": 1}, labels)
    assert found.startswith("eval_classes c00, c01,") and "c19 and 1 more do not occur" in found
    exactly = split_plan.unknown_eval_classes({"a": 1}, labels[:20])
    assert "c19 do not occur" in exactly and "more" not in exactly
    assert "c19 and 5 more" in split_plan.unknown_eval_classes({"a": 1}, [*labels, *"vwxy"])


def test_a_validation_fraction_at_or_below_zero_takes_nothing():
    train = {str(i): 10 for i in range(6)}
    for fraction in (0.0, -0.1):
        assert split_plan.default_validation_classes(list(train), fraction) == []
        assert split_plan.validation_problems({"a": 1}, {}, "seen_classes", fraction) == []
    assert split_plan.default_validation_classes(list(train), 0.01) == ["4", "5"]


@pytest.mark.parametrize("classes, refused", [(3, True), (4, False), (5, False)])
def test_unseen_validation_needs_4_training_classes(classes, refused):
    counts = {str(i): 10 for i in range(classes)}
    kept, valid = split_plan.plan_validation(counts, "unseen_classes", 0.2)
    found = split_plan.validation_problems(kept, valid, "unseen_classes", 0.2)
    assert any("needs at least 4 training classes" in p for p in found) is refused, found


def test_four_classes_are_enough_classes_even_when_validation_takes_three():
    # 4 classes at 0.75: validation takes 3, training keeps 1; the class count is not what is
    # wrong (3 x 1 < 4 but 3 + 1 = 4), the training side is
    counts = {str(i): 10 for i in range(4)}
    kept, valid = split_plan.plan_validation(counts, "unseen_classes", 0.75)
    assert (len(kept), len(valid)) == (1, 3)
    (found,) = split_plan.validation_problems(kept, valid, "unseen_classes", 0.75)
    assert found.startswith("split 'train' keeps 1 class(es) after the validation split")


def test_eval_classes_are_read_under_unseen_classes_only():
    # seen_classes splits every class's rows: a list of held-out classes does not apply
    counts = {"a": 10, "b": 10}
    assert split_plan.plan_problems(counts, "seen_classes", 0.3, ["z"]) == []
    (unknown,) = split_plan.plan_problems(counts, "unseen_classes", 0.3, ["z"])
    assert "eval_classes z do not occur" in unknown


def test_validation_needs_two_classes_one_of_them_with_a_pair():
    def problem(valid):
        return split_plan.validation_problems({"a": 9, "b": 9}, valid, "seen_classes", 0.2)

    assert problem({"x": 2, "y": 3, "z": 2}) == []
    assert problem({"x": 2, "y": 1}) == []
    (one,) = problem({"x": 2})
    assert "split 'valid' has 1 class(es) and 1 with 2 or more rows" in one
    (three,) = problem({"x": 3})
    assert "has 1 class(es) and 1 with 2 or more rows" in three
    (none,) = problem({"x": 1, "y": 1})
    assert "has 2 class(es) and 0 with 2 or more rows" in none
    assert "training rows each at --validation-fraction 0.2" in none
    (unseen,) = split_plan.validation_problems(
        {"a": 9, "b": 9}, {"x": 1, "y": 1}, "unseen_classes", 0.2
    )
    assert "validation classes need 2 or more rows each" in unseen


def test_a_train_split_of_one_class_names_the_remedy_of_its_protocol():
    (seen,) = split_plan.split_problems({"a": 5}, {"a": 2, "b": 2}, "seen_classes", 0.3)
    assert (
        seen == "split 'train' has 1 class(es) (a) after the seen_classes split; training needs "
        "at least 2"
    )
    (unseen,) = split_plan.split_problems({"a": 5}, {"b": 2, "c": 2}, "unseen_classes", 0.3)
    assert unseen.endswith("training needs at least 2; hold out fewer --eval-classes")


def test_validation_keeps_two_training_classes_at_least():
    valid = {"x": 3, "y": 3}  # two classes of 3 rows: usable
    assert (
        split_plan.validation_problems({"a": 9, "b": 9, "c": 9}, valid, "seen_classes", 0.2) == []
    )
    (one,) = split_plan.validation_problems({"a": 9}, valid, "seen_classes", 0.2)
    assert one.startswith("split 'train' keeps 1 class(es) after the validation split")


def test_eval_problems_name_the_remedy_of_the_unseen_protocol():
    (empty,) = split_plan.split_problems({"a": 5, "b": 5}, {}, "unseen_classes", 0.3)
    assert empty == "split 'eval' is empty after the unseen_classes split: no class is held out"
    (lone,) = split_plan.split_problems({"a": 5, "b": 5}, {"c": 1, "d": 1}, "unseen_classes", 0.3)
    assert lone.endswith("hold out classes with at least 2 rows each")
    # the default validation fraction is none: 4 classes split 2 + 2 need no validation
    assert split_plan.plan_problems({str(i): 5 for i in range(4)}, "unseen_classes", 0.3) == []
