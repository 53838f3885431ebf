"""The gallery, from embedding shards to an index, its rows and its match threshold.

``build_gallery`` is what the executor runs once the model has embedded the gallery splits
(``retrieval_evaluator.embeddings``, Beam): it reads each split's shards in order, builds the
index over every row (``index.build``), and calibrates the match threshold on the eval
split's rows searched leave-one-out against that split (``calibration``; a seeded sample of
at most ``max_calibration_queries`` queries, drawn by ``embeddings.sample_rows`` as the
evaluator draws its queries). A row's id is its 64-bit example key in hex (a seeded hash of
the serialized example, stable across runs for the same bytes); rows that repeat an earlier
row's bytes share its id, are kept, and are counted (``duplicate_ids``). ``write_gallery``
writes the artifact's files through TensorFlow's filesystems. Memory: the gallery's
embeddings (rows x d float32) and the index, which holds them once more.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tfx.dsl.io import fileio

from tfx_metric_learning.components.gallery_index import calibration, spec
from tfx_metric_learning.components.gallery_index import index as index_lib
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator.embeddings import (
    EmbeddingShards,
    sample_rows,
)


@dataclasses.dataclass
class Gallery:
    """An index and, in its order, every row's id, label and split; the info and threshold."""

    index: faiss.Index
    ids: list[str]
    labels: list[str]
    splits: list[str]
    info: index_lib.IndexInfo
    calibration: calibration.Calibration

    def describe(self) -> dict:
        """The artifact's ``INFO_FILE``: the index, the calibration, the rows per split."""
        per_split = {s: self.splits.count(s) for s in dict.fromkeys(self.splits)}
        return {
            "built": True,
            # rows whose example repeats an earlier row's bytes (the same id): both are kept
            "duplicate_ids": len(self.ids) - len(set(self.ids)),
            "index": self.info.to_dict(),
            "match": self.calibration.to_dict(),
            "rows_per_split": per_split,
        }


def _split_rows(shards: EmbeddingShards) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, keys = shards.index()
    parts = list(shards.tiles()())
    dim = parts[0].shape[1] if parts else 0
    emb = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return labels, keys, emb


def build_gallery(shards: dict[str, EmbeddingShards], settings: GallerySettings) -> Gallery:
    """The gallery of every row of ``shards`` (``{split: its shards}``), indexed and calibrated."""
    if spec.CALIBRATION_SPLIT not in shards:
        raise ValueError(
            f"the gallery needs the {spec.CALIBRATION_SPLIT!r} split to calibrate the match "
            f"threshold on; it has {sorted(shards)}"
        )
    labels, ids, splits, vectors = [], [], [], []
    calibration_rows = None
    for split, split_shards in shards.items():
        split_labels, keys, emb = _split_rows(split_shards)
        if split == spec.CALIBRATION_SPLIT:
            calibration_rows = (emb, split_labels, keys)
        labels.extend(split_labels.tolist())
        ids.extend(f"{int(k):016x}" for k in keys)
        splits.extend([split] * len(split_labels))
        vectors.append(emb)
    gallery = np.concatenate(vectors)
    built, info = index_lib.build(
        gallery,
        exact_max_rows=settings.exact_max_rows,
        recall_target=settings.index_recall,
        k=settings.lookup_k,
        queries=settings.recall_queries,
        seed=settings.seed,
    )
    emb, split_labels, keys = calibration_rows
    if len(split_labels) < 2:
        raise ValueError(
            f"the {spec.CALIBRATION_SPLIT!r} split has {len(split_labels)} row(s): at least 2 "
            f"are needed to calibrate the match threshold"
        )
    queries = (
        sample_rows(keys, settings.max_calibration_queries)
        if settings.max_calibration_queries
        else None
    )
    sims, correct = calibration.nearest_neighbours(emb, split_labels, queries)
    calibrated = calibration.calibrate(sims, correct, settings.match_precision)
    return Gallery(built, ids, labels, splits, info, calibrated)


def write_gallery(gallery: Gallery, out_dir: str) -> None:
    """Writes the index, the rows (Parquet), the info (JSON) and the curve (PNG)."""
    fileio.makedirs(out_dir)
    index_lib.write(gallery.index, os.path.join(out_dir, spec.INDEX_FILE))
    table = pa.table({"id": gallery.ids, "label": gallery.labels, "split": gallery.splits})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with fileio.open(os.path.join(out_dir, spec.ROWS_FILE), "wb") as f:
        f.write(buffer.getvalue())
    with fileio.open(os.path.join(out_dir, spec.INFO_FILE), "w") as f:
        f.write(json.dumps(gallery.describe(), indent=2, sort_keys=True))
    with fileio.open(os.path.join(out_dir, spec.CURVE_FILE), "wb") as f:
        f.write(curve_png(gallery.calibration))


def read_rows(out_dir: str) -> pa.Table:
    """The rows file of a gallery artifact (id, label, split, in index order)."""
    with fileio.open(os.path.join(out_dir, spec.ROWS_FILE), "rb") as f:
        return pq.read_table(io.BytesIO(f.read()))


def curve_png(calibrated: calibration.Calibration) -> bytes:
    """Precision and recall over the threshold, the chosen threshold marked (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    curve = calibrated.curve
    ax.plot(curve["threshold"], curve["precision"], label="precision")
    ax.plot(curve["threshold"], curve["recall"], label="recall")
    ax.axhline(calibrated.target_precision, color="grey", lw=0.8, ls=":")
    if calibrated.threshold is not None:
        ax.axvline(calibrated.threshold, color="black", lw=0.8, ls="--")
        ax.set_title(
            f"match threshold {calibrated.threshold:.3f}: precision "
            f"{calibrated.precision:.3f}, recall {calibrated.recall:.3f}",
            fontsize=9,
        )
    else:
        ax.set_title(f"no threshold reaches precision {calibrated.target_precision}", fontsize=9)
    ax.set_xlabel("cosine similarity of the nearest gallery item")
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
