"""One typed configuration for the whole pipeline.

Every knob a user can turn lives here, is validated here (before any component runs), and is
handed to the components as plain JSON-serialisable values.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from trainer_module.losses import registry as loss_registry

PROTOCOLS = ("seen_classes", "unseen_classes")

DEFAULT_THRESHOLDS = {"map_at_r": 0.5}


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URI (``gs://``, ``s3://``, ...) rather than a local path."""
    return "://" in path


def resolve_path(path: str) -> str:
    """Local paths made absolute; URIs kept as they are."""
    return path if is_remote(path) else os.path.abspath(path)


@dataclasses.dataclass
class PipelineConfig:
    """Everything that defines one run of the metric-learning pipeline.

    Paths are resolved relative to the current working directory when the config is built.
    """

    pipeline_name: str = "metric-learning"
    pipeline_root: str = "runs/pipeline"
    metadata_path: str = ""  # SQLite MLMD file; default: <pipeline_root>/metadata.sqlite
    serving_dir: str = ""  # Pusher destination; default: <pipeline_root>/serving_model
    data: str = ""  # CSV/TFRecord file or folder; empty = bundled digits
    label_column: str = "label"
    protocol: str = "seen_classes"
    eval_fraction: float = 0.3  # seen_classes: share of every class held out for evaluation
    eval_classes: list[str] | None = None  # unseen_classes: classes held out; default upper half
    max_bad_row_fraction: float = 0.01
    loss: str = "triplet_semihard"
    loss_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    embedding_dim: int = 64
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [256, 128])
    learning_rate: float = 1e-3
    epochs: int = 20
    batch_size: int = 128
    train_steps: int = 0  # >0 caps the number of training steps (0 = run all epochs)
    triplets_per_anchor: int = 4  # examples PairGen draws per row (pairs, triplets, ...)
    positive_fraction: float = 0.5  # share of similar pairs in "pairs" mode
    pair_block_rows: int = 20_000  # PairGen's memory knob: rows per spilled block
    batch_sampler: str = "random"  # online-mining losses: "random" batches or "pk" (P x K)
    pk_classes: int = 8  # P classes per batch with batch_sampler="pk"; K = batch_size / P
    seed: int = 42
    cpu_replicas: int = 1  # logical CPU devices MirroredStrategy mirrors over when no GPU
    thresholds: dict[str, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS)
    )
    comparison_metric: str = "map_at_r"
    comparison_tolerance: float = 0.0  # candidate may be this much worse than the baseline
    recall_at_k: list[int] = dataclasses.field(default_factory=lambda: [1, 5, 10])
    beam_args: list[str] = dataclasses.field(default_factory=list)
    # per-component Beam arguments, added after beam_args (e.g. more workers for Transform)
    component_beam_args: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    enable_cache: bool = True

    def __post_init__(self) -> None:
        self.pipeline_root = resolve_path(self.pipeline_root)
        if not self.metadata_path:
            self.metadata_path = os.path.join(self.pipeline_root, "metadata.sqlite")
        if not self.serving_dir:
            self.serving_dir = os.path.join(self.pipeline_root, "serving_model")
        self.metadata_path = resolve_path(self.metadata_path)
        self.serving_dir = resolve_path(self.serving_dir)
        if self.data:
            self.data = resolve_path(self.data)

    @property
    def data_dir(self) -> str:
        """Folder the bundled default data is written to."""
        return os.path.join(self.pipeline_root, "data")

    @property
    def pair_mode(self) -> str:
        """The pair/triplet construction mode the chosen loss consumes."""
        spec = loss_registry.get_spec(self.loss)
        if self.batch_sampler == "pk":
            return "pk_batches"
        return spec.pair_gen_mode

    def validate(self) -> None:
        """Refuses bad values with an error naming the field and the valid choices."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; valid: {', '.join(PROTOCOLS)}")
        self.loss_params = loss_registry.validate(self.loss, self.loss_params)
        positive_ints = (
            "embedding_dim",
            "epochs",
            "batch_size",
            "triplets_per_anchor",
            "pair_block_rows",
        )
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_steps < 0:
            raise ValueError(f"train_steps must be >= 0, got {self.train_steps}")
        if self.cpu_replicas < 1:
            raise ValueError(f"cpu_replicas must be >= 1, got {self.cpu_replicas}")
        if self.batch_size % self.cpu_replicas:
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by cpu_replicas "
                f"{self.cpu_replicas} (the global batch is split evenly across replicas)"
            )
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if not 0.0 <= self.max_bad_row_fraction <= 1.0:
            raise ValueError(
                f"max_bad_row_fraction must be in [0, 1], got {self.max_bad_row_fraction}"
            )
        if self.batch_sampler not in ("random", "pk"):
            raise ValueError(f"unknown batch_sampler {self.batch_sampler!r}; valid: random, pk")
        if self.batch_sampler == "pk":
            if loss_registry.get_spec(self.loss).input_mode != "labelled":
                raise ValueError(
                    f"batch_sampler 'pk' is for online-mining losses; {self.loss!r} consumes "
                    f"{loss_registry.get_spec(self.loss).input_mode}"
                )
            if self.pk_classes < 2 or self.batch_size % self.pk_classes:
                raise ValueError(
                    f"batch_size {self.batch_size} must be pk_classes ({self.pk_classes}, >= 2) "
                    f"times K (examples per class)"
                )
        if not 0.0 < self.positive_fraction < 1.0:
            raise ValueError(f"positive_fraction must be in (0, 1), got {self.positive_fraction}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if any(h < 1 for h in self.hidden_units):
            raise ValueError(f"hidden_units must all be >= 1, got {self.hidden_units}")
        if not self.recall_at_k or any(k < 1 for k in self.recall_at_k):
            raise ValueError(f"recall_at_k must be a non-empty list of k >= 1: {self.recall_at_k}")
        from components.retrieval_evaluator import metrics as retrieval_metrics

        known = retrieval_metrics.metric_names(self.recall_at_k)
        for name in [*self.thresholds, self.comparison_metric]:
            if name not in known:
                raise ValueError(f"unknown metric {name!r}; valid: {', '.join(known)}")
        if self.comparison_tolerance < 0:
            raise ValueError(f"comparison_tolerance must be >= 0, got {self.comparison_tolerance}")
        if self.data and not is_remote(self.data) and not os.path.exists(self.data):
            raise FileNotFoundError(f"--data {self.data} does not exist")

    def to_json(self) -> str:
        """The config as JSON (what a run records beside its outputs)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
