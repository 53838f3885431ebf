"""Checks before a local run starts: everything the settings and the data's labels decide.

A run that cannot succeed is refused in seconds, before any component runs, with every
problem named (the value, the rule, a remedy), rather than minutes later at the Trainer or the
evaluator. From the files (``components/example_gen/layout.py``): one format, the header, the
feature names (no two columns may share one), the label column, the rows per class. From
those and the settings: the train/eval/valid split the protocol makes (``split_plan``), the
examples PairGen builds for the loss (``sampling.examples_built``), and whether the batches
fit them (``TrainingSettings.data_problems``).

The counts are of rows with a label; rows ExampleGen later drops for bad values only lower
them, and ExampleGen checks its actual split again (so a compiled pipeline, whose data is
read on the cluster, stops at its first component instead).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from tfx_metric_learning.components.example_gen import split_plan
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.layout import count_labels, read_layout
from tfx_metric_learning.components.pair_gen import sampling
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.data import input_paths
from tfx_metric_learning.trainer_module.raster import conv_problem


def preprocessing_fn_problem(path: str) -> str | None:
    """Why Transform could not import the ``preprocessing_fn`` at ``path`` here (None: it can).

    ``module.function``: the module is imported (its own import errors are named) and the
    attribute must be a callable. A local run imports it in this process's environment, so a
    path that fails here fails inside Transform minutes later.
    """
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to see, named
        return (
            f"--preprocessing-fn {path}: importing {module_name} failed "
            f"({type(e).__name__}: {e}); is its package installed or on PYTHONPATH?"
        )
    fn = getattr(module, name, None)
    if not callable(fn):
        found = "nothing" if fn is None else f"a {type(fn).__name__}"
        return f"--preprocessing-fn {path}: {module_name}.{name} is {found}, not a function"
    return None


class PreflightError(ValueError):
    """The run cannot succeed with these settings on this data; the message says why."""


def planned_splits(
    config: PipelineConfig, class_counts: dict[str, int]
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """``(train, eval, valid)`` rows per class the protocol and validation split make."""
    ingest = config.ingest
    train, evaluation = split_plan.plan_splits(
        class_counts, ingest.protocol, ingest.eval_fraction, ingest.eval_classes
    )
    train, valid = split_plan.plan_validation(train, ingest.protocol, ingest.validation_fraction)
    return train, evaluation, valid


def _split_problems(config: PipelineConfig, class_counts: dict[str, int]) -> list[str]:
    ingest = config.ingest
    return split_plan.plan_problems(
        class_counts,
        ingest.protocol,
        ingest.eval_fraction,
        ingest.eval_classes,
        ingest.validation_fraction,
    )


def data_problems(config: PipelineConfig, class_counts: dict[str, int]) -> list[str]:
    """Every problem of the split, PairGen's output and the batches (empty when fine)."""
    found = _split_problems(config, class_counts)
    if found:
        return found
    train, _, _ = planned_splits(config, class_counts)
    sizes = list(train.values())
    pairs = config.pair_settings
    if pairs.mode == "pk_batches":
        eligible = sum(1 for s in sizes if s >= pairs.pk_examples)
        if eligible < pairs.pk_classes:
            return [
                f"P x K batches need {pairs.pk_classes} classes with at least "
                f"{pairs.pk_examples} train rows each; {eligible} of the train split's "
                f"{len(sizes)} classes have that many: lower --pk-classes or --batch-size"
            ]
    built = sampling.examples_built(
        pairs.mode,
        sizes,
        pairs.triplets_per_anchor,
        pairs.pk_classes,
        pairs.pk_examples,
        pairs.pk_num_batches,
    )
    return config.training.data_problems(built, sizes)


def check(
    config: PipelineConfig,
    data_path: str,
    trainings: dict[str, Any] | None = None,
    training: bool = True,
) -> dict[str, Any]:
    """Reads the data's layout and labels; ``PreflightError`` listing every problem.

    ``trainings`` (a comparison's candidates: label -> ``TrainingSettings``) are each checked
    in place of ``config.training``, their problems prefixed with the label; the data is
    read once. ``training=False`` checks only what ingestion needs (the layout, labels and
    splits), for a command that trains nothing (``metric-learning schema``). Returns what
    was found (files, label, classes, rows, the planned split sizes).
    """
    try:
        layout = read_layout(input_paths(data_path, config.ingest), config.ingest)
        counts = count_labels(layout, config.ingest)
    except (DataError, FileNotFoundError) as e:
        raise PreflightError(str(e)) from None
    found = _split_problems(config, counts)
    if not found and training:
        names = sorted(layout.feature_names)  # the order of the encoder's input vector
        for label, training in (trainings or {None: config.training}).items():
            variant = dataclasses.replace(config, training=training)
            problems = data_problems(variant, counts)
            if training.encoder == "conv" and conv_problem(names):
                problems.append(conv_problem(names))
            found += [p if label is None else f"{label}: {p}" for p in problems]
    if training and config.transform.preprocessing_fn:
        problem = preprocessing_fn_problem(config.transform.preprocessing_fn)
        found += [problem] if problem else []
    if found:
        plural = "s" if len(found) > 1 else ""
        raise PreflightError(
            f"the run cannot succeed on {data_path} ({sum(counts.values())} rows, "
            f"{len(counts)} classes); problem{plural}:\n  - " + "\n  - ".join(found)
        )
    train, evaluation, valid = planned_splits(config, counts)
    return {
        "files": layout.paths,
        "label": layout.label_name,
        "features": len(layout.feature_names),
        "rows": sum(counts.values()),
        "classes": len(counts),
        "planned_split_rows": {
            split_plan.TRAIN: sum(train.values()),
            split_plan.EVAL: sum(evaluation.values()),
            split_plan.VALID: sum(valid.values()),
        },
    }
