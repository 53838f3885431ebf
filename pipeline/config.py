"""The pipeline's configuration: where it runs, composed with each stage's own settings.

Each stage owns its settings beside its code (defaults, checks, JSON), and this config only
composes them: ``ingest`` (``components/example_gen/settings.py``), ``validation``
(``components/data_validator/settings.py``), ``transform``
(``trainer_module/transform_settings.py``), ``pairs``
(``components/pair_gen/settings.py``), ``training`` (``trainer_module/settings.py``) and
``evaluation`` (``components/retrieval_evaluator/settings.py``) and ``gallery``
(``components/gallery_index/settings.py``). What belongs to no stage
(paths, replicas, Beam arguments, caching) is defined here. The CLI's flags and the compiled
pipeline's runtime parameters are generated from the same definitions.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx_metric_learning.components.data_validator.settings import ValidationSettings
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.pair_gen.settings import PairSettings
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module.settings import TrainingSettings
from tfx_metric_learning.trainer_module.transform_settings import TransformSettings

# The folder under the pipeline root where the Trainer keeps its resumable state.
TRAINER_STATE = "trainer_state"
# The folder under the pipeline root holding each validated span's verdict (the span ledger).
SPAN_VERDICTS = "span_verdicts"

# The stages' settings classes by their field name in the config (the CLI's flag groups).
STAGES = {
    "ingest": IngestSettings,
    "validation": ValidationSettings,
    "transform": TransformSettings,
    "pairs": PairSettings,
    "training": TrainingSettings,
    "evaluation": EvaluationSettings,
    "gallery": GallerySettings,
}


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URI (``gs://``, ``s3://``, ``ram://`` ...) rather than a local path."""
    return "://" in path


def resolve_path(path: str) -> str:
    """Local paths made absolute; URIs kept as they are."""
    return path if is_remote(path) else os.path.abspath(path)


@dataclasses.dataclass
class PipelineConfig:
    """Everything that defines one run of the metric-learning pipeline.

    Local paths are made absolute (relative to the current directory) when the config is
    built; URIs are kept. With a remote ``pipeline_root`` the ML Metadata store (SQLite,
    local by nature) must be named with ``metadata_path``.
    """

    pipeline_name: str = "metric-learning"
    pipeline_root: str = "runs/pipeline"
    metadata_path: str = ""  # SQLite MLMD file; default: <pipeline_root>/metadata.sqlite
    serving_dir: str = ""  # Pusher destination; default: <pipeline_root>/serving_model
    data: str = ""  # CSV/TFRecord file or folder (or URI); empty = bundled digits
    # curated schema file (TFDV text) that gates every run; empty: SchemaGen infers one per run
    schema_file: str = ""
    ingest: IngestSettings = dataclasses.field(default_factory=IngestSettings)
    validation: ValidationSettings = dataclasses.field(default_factory=ValidationSettings)
    transform: TransformSettings = dataclasses.field(default_factory=TransformSettings)
    pairs: PairSettings = dataclasses.field(default_factory=PairSettings)
    training: TrainingSettings = dataclasses.field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = dataclasses.field(default_factory=EvaluationSettings)
    gallery: GallerySettings = dataclasses.field(default_factory=GallerySettings)
    cpu_replicas: int = 1  # logical CPU devices MirroredStrategy mirrors over when no GPU
    beam_args: list[str] = dataclasses.field(default_factory=list)
    # per-component Beam arguments, added after beam_args (e.g. more workers for Transform)
    component_beam_args: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # worker processes for the local run's Beam components (beam_policy.parallel_beam_args):
    # 0 = automatic (the CPUs, for inputs of beam_policy.PARALLEL_INPUT_BYTES or more),
    # 1 = every step in-process, N = N processes whatever the input's size
    beam_workers: int = 0
    enable_cache: bool = True

    def __post_init__(self) -> None:
        self.pipeline_root = resolve_path(self.pipeline_root)
        if not self.metadata_path and not is_remote(self.pipeline_root):
            self.metadata_path = os.path.join(self.pipeline_root, "metadata.sqlite")
        if not self.serving_dir:
            self.serving_dir = os.path.join(self.pipeline_root, "serving_model")
        if self.metadata_path:
            self.metadata_path = resolve_path(self.metadata_path)
        self.serving_dir = resolve_path(self.serving_dir)
        if self.data:
            self.data = resolve_path(self.data)
        if self.schema_file:
            self.schema_file = resolve_path(self.schema_file)
        if self.gallery.gallery:
            self.gallery = dataclasses.replace(
                self.gallery, gallery=resolve_path(self.gallery.gallery)
            )
        root = self.pipeline_root.rstrip("/")
        if not self.ingest.verdicts_dir:
            self.ingest = dataclasses.replace(self.ingest, verdicts_dir=f"{root}/{SPAN_VERDICTS}")
        if not self.validation.verdicts_dir:
            self.validation = dataclasses.replace(
                self.validation, verdicts_dir=f"{root}/{SPAN_VERDICTS}"
            )
        if not self.training.checkpoint_dir:
            self.training = dataclasses.replace(
                self.training, checkpoint_dir=f"{root}/{TRAINER_STATE}"
            )

    @property
    def data_dir(self) -> str:
        """Folder the bundled default data is written to."""
        return os.path.join(self.pipeline_root, "data")

    @property
    def pair_settings(self) -> PairSettings:
        """PairGen's settings with the shape the training's loss consumes."""
        return self.pairs.following(self.training)

    def validate(self) -> None:
        """Refuses bad values naming the setting and the rule; changes nothing."""
        for name in STAGES:
            getattr(self, name).validate()
        if self.beam_workers < 0:
            raise SettingsError(
                f"beam_workers must be >= 0 (0 = automatic), got {self.beam_workers}"
            )
        if self.cpu_replicas < 1:
            raise SettingsError(f"cpu_replicas must be >= 1, got {self.cpu_replicas}")
        if self.training.batch_size % self.cpu_replicas:
            raise SettingsError(
                f"batch_size {self.training.batch_size} must be divisible by cpu_replicas "
                f"{self.cpu_replicas} (the global batch is split evenly across replicas)"
            )
        if self.metadata_path and is_remote(self.metadata_path):
            raise SettingsError(
                f"metadata_path {self.metadata_path} must be a local file (ML Metadata's SQLite)"
            )
        if self.data and not is_remote(self.data) and not os.path.exists(self.data):
            raise FileNotFoundError(f"--data {self.data} does not exist")
        catalogue = self.gallery.gallery
        if catalogue and not is_remote(catalogue):
            if not os.path.isfile(catalogue):
                raise FileNotFoundError(f"--gallery {catalogue} is not a file")
            from tfx_metric_learning.components.gallery_index.catalogue import check_header

            check_header(catalogue, self.gallery.gallery_id_column)
        if self.ingest.data_pattern and self.data and os.path.isfile(self.data):
            raise SettingsError(
                f"--data-pattern {self.ingest.data_pattern!r} is relative to a data folder, but "
                f"--data {self.data} is a file"
            )

    def to_json(self) -> str:
        """The config as JSON (what a run records beside its outputs)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
