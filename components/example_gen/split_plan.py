"""The train/eval split of each protocol, computed from class sizes alone, and its checks.

Pure functions, shared by the ExampleGen executor (which splits the rows) and the CLI (which
checks the plan before a run starts, from the labels of the input files):

- ``seen_classes``: a class of ``n`` rows puts ``eval_count(n, f)`` rows in eval, namely
  ``min(max(round(n * f), 1), n - 1)`` when ``n >= 2`` and none otherwise: at least one row on
  each side, exactly, whatever the row hash that picks them;
- ``unseen_classes``: whole classes are held out, the given ``eval_classes`` or by default the
  upper half of the sorted classes (``default_eval_classes``).

A validation split (``valid``) for model selection (the Trainer keeps the epoch with the best
validation MAP@R) is then taken out of the training rows the same way, so that selection never
looks at the eval split (Musgrave et al. 2020, section 3): with ``validation_fraction`` f > 0,

- ``seen_classes``: ``eval_count(n_train, f)`` of each class's training rows;
- ``unseen_classes``: whole training classes, the upper ``max(2, round(n * f))`` of the ``n``
  sorted training classes (``default_validation_classes``), never the eval classes.

``split_problems`` states what a usable split needs: two classes to train on, and an eval
split in which some query has a same-class neighbour (two rows of one class) among at least
two classes; otherwise retrieval metrics are undefined. Each problem names the split, the
numbers and a remedy.
"""

from __future__ import annotations

from collections.abc import Mapping

from tfx_metric_learning.core.splits import EVAL, TRAIN, VALID  # noqa: F401 (the names, re-used here)

# with span data: the newest span's rows again (its statistics are what validation checks)
NEW_SPAN = "new_span"
SHOWN_CLASSES = 20


def class_sort_key(label: str) -> tuple:
    """Numeric labels sort by value ("2" < "10"), others lexicographically after them."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def default_eval_classes(labels: list[str]) -> list[str]:
    """``unseen_classes`` default: the upper half of the sorted classes (digits: 5-9)."""
    ordered = sorted(labels, key=class_sort_key)
    return ordered[len(ordered) - len(ordered) // 2 :]


def default_validation_classes(train_labels: list[str], fraction: float) -> list[str]:
    """``unseen_classes`` validation: the upper ``max(2, round(n * fraction))`` training classes.

    At least 2, since retrieval among one class is undefined; none when ``fraction`` is 0.
    """
    if fraction <= 0:
        return []
    ordered = sorted(train_labels, key=class_sort_key)
    k = max(2, round(len(ordered) * fraction))
    return ordered[len(ordered) - k :] if k <= len(ordered) else list(ordered)


def eval_count(n: int, fraction: float) -> int:
    """``seen_classes``: rows of a class of ``n`` rows that go to eval."""
    return min(max(round(n * fraction), 1), n - 1) if n >= 2 else 0


def min_rows_for_eval_pairs(fraction: float) -> int:
    """The fewest rows a class needs under ``seen_classes`` to put 2 rows in eval."""
    n = 2
    while eval_count(n, fraction) < 2:
        n += 1
    return n


def _shown(labels) -> str:
    labels = sorted(labels, key=class_sort_key)
    more = f" and {len(labels) - SHOWN_CLASSES} more" if len(labels) > SHOWN_CLASSES else ""
    return ", ".join(labels[:SHOWN_CLASSES]) + more


def held_out_classes(class_counts: Mapping[str, int], eval_classes: list[str] | None) -> list[str]:
    """``unseen_classes``: the classes held out for evaluation."""
    if eval_classes:
        return sorted(map(str, eval_classes), key=class_sort_key)
    return default_eval_classes(list(class_counts))


def plan_splits(
    class_counts: Mapping[str, int],
    protocol: str,
    eval_fraction: float,
    eval_classes: list[str] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """``(train, eval)`` rows per class that the protocol makes of ``class_counts``."""
    if protocol == "unseen_classes":
        return _hold_out(class_counts, set(held_out_classes(class_counts, eval_classes)), 0.0)
    return _hold_out(class_counts, set(), eval_fraction)


def _hold_out(
    counts: Mapping[str, int], classes: set[str], fraction: float
) -> tuple[dict[str, int], dict[str, int]]:
    """``(kept, held)``: whole ``classes`` held out, or else ``eval_count(n, fraction)`` rows."""
    kept: dict[str, int] = {}
    held: dict[str, int] = {}
    for label, n in counts.items():
        k = n if label in classes else eval_count(n, fraction) if fraction > 0 else 0
        if n - k:
            kept[label] = n - k
        if k:
            held[label] = k
    return kept, held


def plan_validation(
    train: Mapping[str, int], protocol: str, fraction: float
) -> tuple[dict[str, int], dict[str, int]]:
    """``(train, valid)`` rows per class taken out of ``train`` (see the module docstring)."""
    if fraction <= 0:
        return dict(train), {}
    if protocol == "unseen_classes":
        return _hold_out(train, set(default_validation_classes(list(train), fraction)), 0.0)
    return _hold_out(train, set(), fraction)


def validation_problems(
    train: Mapping[str, int], valid: Mapping[str, int], protocol: str, fraction: float
) -> list[str]:
    """What makes the validation split (taken out of ``train``) unusable, with the remedy."""
    if fraction <= 0:
        return []
    remedy = "or --validation-fraction 0 (no validation split: the last epoch is kept)"
    if protocol == "unseen_classes" and len(train) + len(valid) < 4:
        return [
            f"a validation split of whole classes needs at least 4 training classes (2 to "
            f"train on, 2 to validate on); the train split has {len(train) + len(valid)} "
            f"({_shown({**train, **valid})}): give more classes, {remedy}"
        ]
    found = []
    if len(train) < 2:
        found.append(
            f"split 'train' keeps {len(train)} class(es) after the validation split; training "
            f"needs at least 2: lower --validation-fraction, {remedy}"
        )
    if len(valid) < 2 or not any(n >= 2 for n in valid.values()):
        need = (
            f"classes need at least {min_rows_for_eval_pairs(fraction)} training rows each at "
            f"--validation-fraction {fraction}"
            if protocol == "seen_classes"
            else "validation classes need 2 or more rows each"
        )
        found.append(
            f"split 'valid' has {len(valid)} class(es) and "
            f"{sum(1 for n in valid.values() if n >= 2)} with 2 or more rows, so validation "
            f"retrieval is undefined; {need}: raise --validation-fraction, {remedy}"
        )
    return found


def unknown_eval_classes(class_counts: Mapping[str, int], eval_classes: list[str] | None) -> str:
    """A problem when ``eval_classes`` names classes the data does not have ("" otherwise)."""
    unknown = sorted(set(map(str, eval_classes or [])) - set(class_counts), key=class_sort_key)
    if not unknown:
        return ""
    return (
        f"eval_classes {_shown(unknown)} do not occur in the data's labels; its "
        f"{len(class_counts)} classes are: {_shown(class_counts)}"
    )


def split_problems(
    train: Mapping[str, int],
    evaluation: Mapping[str, int],
    protocol: str,
    eval_fraction: float,
) -> list[str]:
    """What makes a ``(train, eval)`` split unusable for training and retrieval metrics."""
    found = []
    if len(train) < 2:
        found.append(
            f"split 'train' has {len(train)} class(es) ({_shown(train)}) after the {protocol} "
            f"split; training needs at least 2"
            + ("; hold out fewer --eval-classes" if protocol == "unseen_classes" else "")
        )
    pairs = [label for label, n in evaluation.items() if n >= 2]
    if not evaluation:
        reason = (
            "every class has fewer than 2 rows, and seen_classes keeps a class's only row for "
            "training"
            if protocol == "seen_classes"
            else "no class is held out"
        )
        found.append(f"split 'eval' is empty after the {protocol} split: {reason}")
    elif len(evaluation) < 2:
        found.append(f"split 'eval' has 1 class ({_shown(evaluation)}); retrieval needs at least 2")
    elif not pairs:
        sizes = sorted(set(evaluation.values()))
        remedy = (
            f"classes need at least {min_rows_for_eval_pairs(eval_fraction)} rows each at "
            f"--eval-fraction {eval_fraction}; raise --eval-fraction or give more rows per class"
            if protocol == "seen_classes"
            else "hold out classes with at least 2 rows each"
        )
        found.append(
            f"split 'eval' has no class with 2 or more rows ({len(evaluation)} classes of "
            f"{', '.join(map(str, sizes))} row(s)), so no query has a same-class neighbour and "
            f"retrieval metrics are undefined; {remedy}"
        )
    return found


def plan_problems(
    class_counts: Mapping[str, int],
    protocol: str,
    eval_fraction: float,
    eval_classes: list[str] | None = None,
    validation_fraction: float = 0.0,
) -> list[str]:
    """The problems of the split ``plan_splits`` (then ``plan_validation``) would make.

    ``eval_classes`` are checked first, then the train/eval split, then the validation split.
    """
    if not class_counts:
        return ["the data has no rows with a label"]
    if protocol == "unseen_classes":
        unknown = unknown_eval_classes(class_counts, eval_classes)
        if unknown:
            return [unknown]
    train, evaluation = plan_splits(class_counts, protocol, eval_fraction, eval_classes)
    found = split_problems(train, evaluation, protocol, eval_fraction)
    if found:
        return found
    kept, valid = plan_validation(train, protocol, validation_fraction)
    return validation_problems(kept, valid, protocol, validation_fraction)
