"""The training stage's settings: the loss, the model, the optimiser and the batches.

``run_fn`` reads them from the Trainer's ``custom_config`` (which must hold every setting; on
Kubeflow it is the ``training`` runtime parameter), and PairGen derives from them what it
must build (``pair_gen_mode``, ``num_negatives``, the P x K shape), so the data and the loss
cannot disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trainer_module.losses import registry
from trainer_module.stage_settings import (
    StageSettings,
    at_least,
    each,
    one_of,
    positive,
    seed_setting,
    setting,
)

BATCH_SAMPLERS = ("random", "pk")


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
    pk_classes: int = setting(8, "P, the classes per batch with --batch-sampler pk", at_least(2))
    seed: int = seed_setting()

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

    def resolved(self) -> TrainingSettings:
        """A copy whose ``loss_params`` hold every parameter of the loss (defaults filled in)."""
        return dataclasses.replace(self, loss_params=self.full_loss_params())
