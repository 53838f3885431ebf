"""The gallery stage's settings: how the gallery is indexed and when a lookup says "match"."""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    at_least,
    boolean,
    closed_fraction,
    is_number,
    non_negative,
    seed_setting,
    setting,
)


def _precision(value) -> str | None:
    ok = is_number(value) and 0 < value <= 1
    return None if ok else f"must be in (0, 1], got {value!r}"


def _column_name(value) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"must be a name, got {value!r}"


@dataclasses.dataclass(frozen=True)
class GallerySettings(StageSettings):
    """Settings of the GalleryIndex component (one ``settings`` execution property)."""

    STAGE = "gallery"

    gallery_index: bool = setting(
        True,
        "embed the labelled rows of the data with the blessed model, index them (faiss) and "
        "push the index and a calibrated match threshold with the model",
        boolean,
    )
    match_precision: float = setting(
        0.99,
        "precision a lookup's 'match' must reach: the match threshold is the similarity of "
        "highest recall at that precision, calibrated on the eval split",
        _precision,
    )
    exact_max_rows: int = setting(
        100_000,
        "galleries of up to this many rows get an exact index; larger ones an IVF index whose "
        "probe count is chosen by measured recall",
        at_least(1),
    )
    index_recall: float = setting(
        0.99,
        "recall@k an approximate index must reach against exact search, measured on held-out "
        "queries",
        closed_fraction,
    )
    lookup_k: int = setting(
        10, "neighbours a lookup returns (and recall is measured at)", at_least(1)
    )
    recall_queries: int = setting(
        300,
        "held-out queries the approximate index's recall is measured on (300 x k=10 "
        "neighbours: a standard error of 0.002 at recall 0.99; each costs an exact search)",
        at_least(1),
    )
    max_calibration_queries: int = setting(
        20_000,
        "calibrate the match threshold on at most this many eval rows (a seeded sample, each "
        "searching the whole eval split; 0: every row)",
        non_negative,
    )
    signature_max_rows: int = setting(
        100_000,
        "galleries of up to this many rows are also built into the pushed SavedModel as its "
        "'lookup' signature (exact search in the graph, for TF Serving); 0: never",
        non_negative,
    )
    gallery: str = setting(
        "",
        "a catalogue file (CSV with a header, or TFRecord of tf.Examples: the model's raw "
        "features, an id column and optionally the label column) to index instead of the "
        "labelled rows of the data",
        metavar="PATH",
    )
    gallery_id_column: str = setting(
        "id", "the catalogue's column of item ids (unique, non-empty)", _column_name
    )
    seed: int = seed_setting()
