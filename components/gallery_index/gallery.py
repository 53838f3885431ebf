"""The gallery, from embeddings to an index, its rows and its match threshold.

The gallery's rows are either the labelled rows of the run's data (``rows_of_splits``: the
gallery splits the model embedded with the evaluator's Beam steps, read split after split;
a row's id is its 64-bit example key in hex, a seeded hash of the serialized example, stable
across runs for the same bytes; rows that repeat an earlier row's bytes share its id, are
kept, and are counted as ``duplicate_ids``) or a catalogue's (``rows_of_catalogue``: its own
unique ids, its labels when it has them, split ``spec.CATALOGUE_SPLIT``).

``build_gallery`` builds the index over every row (``index.build``) and calibrates the match
threshold on the eval split's rows searched leave-one-out against that split
(``calibration``; a seeded sample of at most ``max_calibration_queries`` queries, drawn by
``embeddings.sample_rows`` as the evaluator draws its queries, whose nearest neighbours are
read from the evaluation when it searched the same ones: ``evaluated``): whatever the
gallery, the threshold answers "is the nearest item of the same class" on data with known
classes.
``write_gallery`` writes the artifact's files through TensorFlow's filesystems. Memory: the
gallery's embeddings (rows x d float32, kept normalised for the ``lookup`` signature) and
the index, which holds them once more.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import sys

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tfx.dsl.io import fileio

from tfx_metric_learning.components.gallery_index import calibration, spec
from tfx_metric_learning.components.gallery_index import index as index_lib
from tfx_metric_learning.components.gallery_index.catalogue import Table
from tfx_metric_learning.components.gallery_index.evaluated import Evaluated, nearest_for
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator.embeddings import (
    EmbeddingShards,
    sample_rows,
)
from tfx_metric_learning.core.retrieval.search import normalise


@dataclasses.dataclass
class Gallery:
    """An index and, in its order, every row's id, label and split; the info and threshold."""

    index: faiss.Index
    ids: list[str]
    labels: list[str]
    splits: list[str]
    info: index_lib.IndexInfo
    calibration: calibration.Calibration
    vectors: np.ndarray  # the rows' L2-normalised embeddings, in index order
    # the evaluation the calibration queries' nearest neighbours were read from (None: searched)
    nearest_from: str | None = None

    def describe(self) -> dict:
        """The artifact's ``INFO_FILE``: the index, the calibration, the rows per split."""
        per_split = {s: self.splits.count(s) for s in dict.fromkeys(self.splits)}
        return {
            "built": True,
            # rows whose example repeats an earlier row's bytes (the same id): both are kept
            "duplicate_ids": len(self.ids) - len(set(self.ids)),
            "index": self.info.to_dict(),
            "match": self.calibration.to_dict(),
            "nearest_from": self.nearest_from,
            "rows_per_split": per_split,
        }


@dataclasses.dataclass
class Rows:
    """The gallery's rows before indexing: ids, labels, splits and embeddings, in order."""

    ids: list[str]
    labels: list[str]
    splits: list[str]
    vectors: np.ndarray  # rows x d float32


def _split_rows(shards: EmbeddingShards) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, keys, embeddings)`` of a split, read in one pass (the index holds them all)."""
    return shards.read(max_bytes=sys.maxsize)


def rows_of_splits(shards: dict[str, EmbeddingShards]) -> Rows:
    """Every row of ``shards`` (``{split: its shards}``), split after split; ids from keys."""
    labels, ids, splits, vectors = [], [], [], []
    for split, split_shards in shards.items():
        split_labels, keys, emb = _split_rows(split_shards)
        labels.extend(split_labels.tolist())
        ids.extend(f"{int(k):016x}" for k in keys)
        splits.extend([split] * len(split_labels))
        vectors.append(emb)
    return Rows(ids, labels, splits, np.concatenate(vectors))


def rows_of_catalogue(table: Table, vectors: np.ndarray) -> Rows:
    """A catalogue's rows (``catalogue.check_catalogue``d) with their embeddings."""
    labels = [""] * len(table) if table.labels is None else [str(v) for v in table.labels]
    return Rows(list(table.ids), labels, [spec.CATALOGUE_SPLIT] * len(table), vectors)


def build_gallery(
    rows: Rows,
    calibration_shards: EmbeddingShards,
    settings: GallerySettings,
    evaluated: Evaluated | None = None,
) -> Gallery:
    """``rows`` indexed, and the match threshold calibrated on ``calibration_shards``.

    The queries' nearest neighbours are read from ``evaluated`` when it holds those of the
    same queries (``evaluated.nearest_for``), else searched here.
    """
    gallery = normalise(rows.vectors)
    built, info = index_lib.build(
        gallery,
        exact_max_rows=settings.exact_max_rows,
        recall_target=settings.index_recall,
        k=settings.lookup_k,
        queries=settings.recall_queries,
        seed=settings.seed,
    )
    split_labels, keys, emb = _split_rows(calibration_shards)
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
    found = nearest_for(evaluated, keys, np.arange(len(keys)) if queries is None else queries)
    nearest_from = None if found is None else evaluated.uri
    if found is None:
        found = calibration.nearest_neighbours(emb, split_labels, queries)
    sims, correct = found
    calibrated = calibration.calibrate(sims, correct, settings.match_precision)
    return Gallery(
        built, rows.ids, rows.labels, rows.splits, info, calibrated, gallery, nearest_from
    )


def write_gallery(gallery: Gallery, out_dir: str, extra: dict | None = None) -> None:
    """Writes the index, the rows (Parquet), the curve (PNG) and the info (JSON).

    The info (with ``extra``) goes last: a gallery whose info file exists is complete.
    """
    fileio.makedirs(out_dir)
    index_lib.write(gallery.index, os.path.join(out_dir, spec.INDEX_FILE))
    table = pa.table({"id": gallery.ids, "label": gallery.labels, "split": gallery.splits})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with fileio.open(os.path.join(out_dir, spec.ROWS_FILE), "wb") as f:
        f.write(buffer.getvalue())
    curve = curve_png(gallery.calibration)
    with fileio.open(os.path.join(out_dir, spec.CURVE_FILE), "wb") as f:
        f.write(curve)
    write_report(gallery, os.path.join(out_dir, spec.REPORT_DIR), curve)
    with fileio.open(os.path.join(out_dir, spec.INFO_FILE), "w") as f:
        f.write(json.dumps(gallery.describe() | (extra or {}), indent=2, sort_keys=True))


def write_report(gallery: Gallery, report_dir: str, curve: bytes) -> str:
    """A self-contained HTML page: the index, the threshold's rates, the curve; its path."""
    from tfx_metric_learning.components.retrieval_evaluator.report import write_page

    info, match = gallery.info, gallery.calibration
    rows = (
        [
            ("gallery rows", f"{info.rows:,}"),
            (
                "index",
                info.kind
                if info.kind == index_lib.FLAT
                else f"{info.kind}, nlist {info.nlist}, nprobe {info.nprobe}",
            ),
            (f"recall@{info.k} against exact search", f"{info.recall_at_k:.4f}"),
            ("target precision", f"{match.target_precision}"),
            ("match threshold", "none" if match.threshold is None else f"{match.threshold:.4f}"),
        ]
        + [
            (name.replace("_", " "), "-" if value is None else f"{value:.4f}")
            for name, value in (
                ("precision", match.precision),
                ("recall", match.recall),
                ("false_accept_rate", match.false_accept_rate),
                ("false_reject_rate", match.false_reject_rate),
            )
        ]
        + [("calibration queries (eval split)", f"{match.queries:,}")]
    )
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    image = base64.b64encode(curve).decode("ascii")
    body = (
        f"<h1>Gallery index and match threshold</h1><table>{table}</table>"
        f"<h2>Precision and recall over the threshold</h2>"
        f"<img alt='precision and recall' src='data:image/png;base64,{image}'>"
    )
    fileio.makedirs(report_dir)
    return write_page(report_dir, "Gallery index", body)


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
