"""What ``run_fn`` and ``tuner_fn`` both start from: the settings, PairGen's build, the data.

``TrainingJob.prepare`` reads the training settings from the Trainer's ``custom_config``
(without the Vertex AI extension's keys: ``training_config``), checks PairGen's output
against the loss, and builds the train dataset, the validation rows and the training length
(``training_length``) from ``fn_args``, before any model exists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils

from tfx_metric_learning.core.splits import VALID as VALID_SPLIT
from tfx_metric_learning.trainer_module import datasets, guards, preprocessing, selection
from tfx_metric_learning.trainer_module.settings import TrainingSettings

# custom_config keys of TFX's google_cloud_ai_platform Trainer extension (its job's arguments,
# region, labels ...: tfx.extensions.google_cloud_ai_platform), which runs this run_fn with
# them in place when the training is a Vertex AI custom job (kubeflow/distributed.py)
EXTENSION_PREFIX = "ai_platform_"


def training_config(custom_config: dict[str, Any] | None) -> dict[str, Any]:
    """The training settings in the Trainer's ``custom_config``: all but the extension's keys."""
    return {k: v for k, v in (custom_config or {}).items() if not k.startswith(EXTENSION_PREFIX)}


def training_length(training: TrainingSettings, train_examples: int) -> tuple[int, int]:
    """``(epochs, steps per epoch)``: every full batch per epoch, ``train_steps`` a hard cap.

    A cap below ``epochs`` x steps is one "epoch" of exactly ``train_steps`` steps.
    """
    steps_per_epoch = train_examples // training.batch_size
    epochs, cap = training.epochs, training.train_steps
    if cap and cap < epochs * steps_per_epoch:
        return 1, cap
    return epochs, steps_per_epoch


class ValidationSplitError(ValueError):
    """The valid split cannot select an epoch (or score a trial): too few rows or classes."""


@dataclasses.dataclass
class TrainingJob:
    """A training's inputs, read and checked from ``fn_args`` (no model, no strategy yet)."""

    training: TrainingSettings
    built: dict[str, Any]  # PairGen's build record (``pair_gen_build``): mode, shape, splits
    tft_output: tft.TFTransformOutput
    num_classes: int
    train_examples: int
    epochs: int
    steps_per_epoch: int
    train_ds: tf.data.Dataset
    validation: tuple[np.ndarray, np.ndarray] | None  # (features, labels) of the valid split

    @property
    def feature_dim(self) -> int:
        """F, the width of the transformed feature vector the encoder reads."""
        return datasets.feature_dim(self.tft_output)

    @property
    def feature_names(self) -> list[str]:
        """The raw features in the order of the transformed feature vector."""
        return datasets.feature_names(self.tft_output)

    @classmethod
    def prepare(
        cls,
        fn_args: fn_args_utils.FnArgs,
        training: TrainingSettings,
        transform_output: str,
        *,
        replicas: int = 1,
        need_validation: bool = False,
    ) -> TrainingJob:
        """Checks PairGen's output against ``training`` and reads the data.

        ``replicas`` must divide the batch; the train split must hold one batch. The valid
        split (``fn_args.eval_files``) is read when PairGen wrote one, and must then be able
        to select an epoch; ``need_validation`` refuses a build without one.
        """
        built = guards.built_by_pair_gen(fn_args.schema_path)
        guards.check_pair_gen(training, built)
        counts = built["splits"]
        if need_validation and VALID_SPLIT not in counts:
            raise ValidationSplitError(
                "tuning scores trials on the valid split, and PairGen wrote none"
            )
        batch_size = training.batch_size
        if batch_size % replicas:
            raise ValueError(f"batch_size {batch_size} is not divisible by {replicas} replicas")
        train_examples = counts["train"]["examples"]
        if train_examples < batch_size:
            raise ValueError(
                f"the train split has {train_examples} examples, fewer than one batch of "
                f"{batch_size}"
            )
        tft_output = tft.TFTransformOutput(transform_output)
        train_ds = datasets.make_dataset(
            fn_args.train_files,
            fn_args.data_accessor,
            datasets.load_schema(fn_args.schema_path),
            training.loss_spec,
            batch_size,
            training.seed,
            in_order=training.batch_sampler == "pk",
            rows=train_examples,
            memory_budget=datasets.memory_budget(training),
        )
        validation = None
        if VALID_SPLIT in counts:
            validation = selection.read_rows(fn_args.eval_files, training.seed)
            if not selection.usable(validation[1]):
                raise ValidationSplitError(
                    f"the validation split ({fn_args.eval_files}) has {len(validation[1])} "
                    f"rows of {len(set(validation[1]))} class(es); selecting an epoch needs 2 "
                    f"classes, one with 2 rows"
                )
        epochs, steps_per_epoch = training_length(training, train_examples)
        return cls(
            training=training,
            built=built,
            tft_output=tft_output,
            num_classes=tft_output.vocabulary_size_by_name(preprocessing.LABEL_VOCAB),
            train_examples=train_examples,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            train_ds=train_ds,
            validation=validation,
        )
