"""The training stage's settings: the loss, the model, the optimiser and the batches.

``run_fn`` reads them from the Trainer's ``custom_config`` (which must hold every setting; on
Kubeflow it is the ``training`` runtime parameter), and PairGen derives from them what it
must build (``pair_gen_mode``, ``num_negatives``, the P x K shape), so the data and the loss
cannot disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    at_least,
    boolean,
    each,
    fraction,
    one_of,
    positive,
    seed_setting,
    setting,
)
from tfx_metric_learning.trainer_module.losses import registry

BATCH_SAMPLERS = ("random", "pk")
# the encoder architectures of ``model.build_encoder``
ENCODERS = ("auto", "mlp", "residual", "conv")
# ``auto`` takes ``conv`` when the features are the pixels of an image at least this many
# pixels a side (``raster.raster_layout``): three 2 x 2 poolings then leave a 2 x 2 map
AUTO_CONV_MIN_SIDE = 16


@dataclasses.dataclass(frozen=True)
class TrainingSettings(StageSettings):
    """Settings of the Trainer (``run_fn``)."""

    STAGE = "training"

    loss: str = setting(
        "triplet_semihard",
        f"loss by registered name: {', '.join(registry.names())} "
        "(`metric-learning losses` lists their parameters)",
        metavar="NAME",
    )
    loss_params: dict[str, Any] = setting(
        {},
        "loss parameter, e.g. margin=0.5 (repeatable); unset ones take the loss's defaults",
        flag="--loss-param",
        metavar="KEY=VALUE",
    )
    encoder: str = setting(
        "auto",
        "auto: conv when the features are the pixels of an image of at least "
        f"{AUTO_CONV_MIN_SIDE} x {AUTO_CONV_MIN_SIDE} (their names px_0 ... or px_R_C, "
        "trainer_module/raster.py), else mlp; mlp: an MLP; residual: the transformed input "
        "through a skip that starts as the identity plus an MLP that starts at zero, which "
        "keeps the inputs' structure for classes never trained on; conv: 3 x 3 convolutions "
        "and 2 x 2 max pooling over the image (trainer_module/model.py)",
        one_of(*ENCODERS),
    )
    conv_filters: list[int] = setting(
        [32, 64, 128],
        "filters of the conv encoder's blocks (a 3 x 3 convolution and a 2 x 2 max pooling "
        "each), comma-separated",
        each(at_least(1)),
    )
    conv_dropout: float = setting(
        0.0,
        "dropout rate of the conv encoder's flattened features in training, before the "
        "projection to the embedding (0: none)",
        fraction,
    )
    embedding_dim: int = setting(64, "embedding dimension D", at_least(1))
    hidden_units: list[int] = setting(
        [256, 128], "hidden layer widths of the MLP encoder, comma-separated", each(at_least(1))
    )
    learning_rate: float = setting(1e-3, "Adam learning rate", positive)
    epochs: int = setting(20, "training epochs", at_least(1))
    batch_size: int = setting(128, "global batch size (split evenly across replicas)", at_least(1))
    train_steps: int = setting(0, "cap on training steps (0 = train all epochs)", at_least(0))
    batch_sampler: str = setting(
        "random",
        "online-mining losses: shuffled batches, or class-balanced P x K batches "
        "(P = --pk-classes, K = batch size / P)",
        one_of(*BATCH_SAMPLERS),
    )
    in_memory_mb: int = setting(
        1024,
        "hold the parsed train split in memory when it takes at most this many MiB (read once, "
        "then a seeded permutation per epoch: no parsing after the first read); larger splits "
        "stream from the files through a seeded shuffle buffer; 0: always stream. The two "
        "streams differ, so the setting is part of what a training reproduces",
        at_least(0),
        metavar="MIB",
    )
    pk_classes: int = setting(8, "P, the classes per batch with --batch-sampler pk", at_least(2))
    seed: int = seed_setting()
    warm_start: bool = setting(
        False,
        "start from the weights of the production model (its encoder must have the same "
        "shape; none in production: a cold start) instead of a random initialisation",
        boolean,
    )
    checkpoint_dir: str = setting(
        "",
        "folder (any filesystem) where the Trainer keeps the state it resumes from when killed, "
        "one sub-folder per training and inputs (trainer_module/resume.py); empty: none. The "
        "pipeline sets PIPELINE_ROOT/trainer_state",
        cli=False,
    )

    def _checks(self) -> list[str]:
        try:
            spec = registry.get_spec(self.loss)
            registry.validate(self.loss, self.loss_params)
        except ValueError as e:
            return [str(e)]
        found = []
        if self.batch_sampler == "pk":
            if spec.input_mode != "labelled":
                found.append(
                    f"batch_sampler 'pk' is for online-mining losses; {self.loss!r} consumes "
                    f"{spec.input_mode}"
                )
            if self.batch_size % self.pk_classes:
                found.append(
                    f"batch_size {self.batch_size} must be pk_classes ({self.pk_classes}) "
                    f"times K (examples per class)"
                )
        return found

    @property
    def loss_spec(self) -> registry.LossSpec:
        """The registered loss."""
        return registry.get_spec(self.loss)

    def full_loss_params(self) -> dict[str, Any]:
        """The loss parameters with the loss's defaults filled in (a new dict)."""
        return registry.validate(self.loss, self.loss_params)

    @property
    def pair_gen_mode(self) -> str:
        """What PairGen must build for this loss and batch sampler."""
        return "pk_batches" if self.batch_sampler == "pk" else self.loss_spec.pair_gen_mode

    @property
    def num_negatives(self) -> int:
        """K negatives per anchor (``triplets_k``), from the loss's ``num_negatives``; else 1."""
        return int(self.full_loss_params().get("num_negatives", 1))

    @property
    def pk_examples(self) -> int:
        """K, the rows per class in a P x K batch."""
        return max(1, self.batch_size // self.pk_classes)

    @property
    def mines_batches(self) -> bool:
        """Whether the loss finds its pairs inside each batch (online mining on label keys)."""
        spec = self.loss_spec
        return spec.input_mode == "labelled" and not spec.needs_num_classes

    def data_problems(self, train_examples: int, class_sizes: list[int]) -> list[str]:
        """What makes these settings unusable on a train split of ``class_sizes`` rows per class.

        ``train_examples``: the rows PairGen writes for it (what is batched). The Trainer
        needs one full batch; an online-mining loss needs, on average, at least one
        same-class pair per shuffled batch: ``b (b - 1) / 2 * sum_c p_c^2 >= 1`` for batch
        size ``b`` and class shares ``p_c``; P x K batches need K >= 2 rows per class.
        """
        found = []
        b = self.batch_size
        if train_examples < b:
            found.append(
                f"batch_size {b} is more than the {train_examples} examples the train split "
                f"gives {self.loss!r}; the Trainer needs one full batch: use --batch-size "
                f"{max(train_examples, 1)} or less"
            )
        if self.mines_batches and self.batch_sampler == "random" and class_sizes:
            total = sum(class_sizes)
            share = sum((s / total) ** 2 for s in class_sizes)
            pairs = b * (b - 1) / 2 * share
            if pairs < 1:
                need = 2
                while need * (need - 1) / 2 * share < 1:
                    need += 1
                found.append(
                    f"batch_size {b} gives {self.loss!r}, which mines pairs inside each batch, "
                    f"{pairs:.2f} same-class pairs per batch on average over "
                    f"{len(class_sizes)} classes; use --batch-size {need} or more, or "
                    f"--batch-sampler pk"
                )
        if self.batch_sampler == "pk" and self.pk_examples < 2:
            found.append(
                f"batch_size {b} with pk_classes {self.pk_classes} gives K = "
                f"{self.pk_examples} row per class; P x K batches need K >= 2: use "
                f"--batch-size {2 * self.pk_classes} or more"
            )
        return found

    def resolved(self) -> TrainingSettings:
        """A copy whose ``loss_params`` hold every parameter of the loss (defaults filled in)."""
        return dataclasses.replace(self, loss_params=self.full_loss_params())
