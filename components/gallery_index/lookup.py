"""Lookups against a pushed version: the loader for a model and its gallery index.

A pushed version (``<serving dir>/<version>/``) holds the SavedModel and, in
``assets.extra/gallery/`` (``spec.PUSHED_SUBDIR``), the faiss index, its rows
(id, label, split) and its info (the match threshold). ``Lookup.load`` reads all three;
``Lookup.query`` embeds raw feature columns with the model's ``serving_default`` signature
(NaN = missing, imputed by the model), searches the index and says, per query, whether its
nearest gallery item is a match (similarity >= the calibrated threshold) or unknown.

Usage::

    from tfx_metric_learning.components.gallery_index.lookup import Lookup
    lookup = Lookup.load("<serving dir>")            # the production version
    found = lookup.query({"pixel_0_0": [0.0, ...], ...}, k=10)
    found.labels[:, 0], found.similarities[:, 0], found.match
"""

from __future__ import annotations

import dataclasses
import json
import os

import faiss
import numpy as np
import tensorflow as tf
from tfx.dsl.io import fileio

from tfx_metric_learning.components.gallery_index import gallery, spec
from tfx_metric_learning.components.gallery_index import index as index_lib
from tfx_metric_learning.components.gallery_index.signature import (
    EMBEDDING_OUTPUT,
    SERVING_SIGNATURE,
)
from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.components.production import spec as production_spec

BATCH_ROWS = 4096


def load_serving(model_dir: str):
    """The ``serving_default`` signature of the SavedModel in ``model_dir``."""
    model = tf.saved_model.load(model_dir)
    if SERVING_SIGNATURE not in model.signatures:
        raise ValueError(f"the model in {model_dir} has no {SERVING_SIGNATURE!r} signature")
    return model.signatures[SERVING_SIGNATURE]


def feature_names(serve) -> list[str]:
    """The raw features a ``serving_default`` signature takes, sorted."""
    return sorted(serve.structured_input_signature[1])


def embed_columns(serve, features: dict[str, np.ndarray], dim: int = 0) -> np.ndarray:
    """Embeddings by ``serve`` of raw feature columns (``{name: values}``).

    ``BATCH_ROWS`` rows at a time; a feature the model takes that ``features`` lacks is
    refused by name.
    """
    names = feature_names(serve)
    missing = [n for n in names if n not in features]
    if missing:
        raise ValueError(
            f"the rows lack feature(s) {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + f"; the model takes {len(names)} features"
        )
    columns = {n: np.asarray(features[n], np.float32) for n in names}
    rows = len(next(iter(columns.values()))) if columns else 0
    parts = []
    for start in range(0, rows, BATCH_ROWS):
        batch = {n: tf.constant(v[start : start + BATCH_ROWS]) for n, v in columns.items()}
        parts.append(serve(**batch)[EMBEDDING_OUTPUT].numpy())
    return np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)


@dataclasses.dataclass
class Found:
    """Per query: the k nearest gallery ids, labels and similarities; match or unknown."""

    ids: np.ndarray  # [queries, k] str ("" past the gallery's end)
    labels: np.ndarray  # [queries, k] str
    similarities: np.ndarray  # [queries, k] float32 (-inf past the gallery's end)
    match: np.ndarray  # [queries] bool: the nearest item's similarity >= the threshold


@dataclasses.dataclass
class Lookup:
    """A loaded version: its model's serving signature, index, rows and match threshold."""

    version_dir: str
    serve: object
    index: faiss.Index
    ids: np.ndarray
    labels: np.ndarray
    threshold: float | None
    info: dict

    @classmethod
    def load(cls, path: str) -> Lookup:
        """The version at ``path``: a version folder, or a serving dir (its production)."""
        version_dir = path
        if not fileio.exists(os.path.join(path, production_spec.SAVED_MODEL)):
            production = production_record.read(path)
            if not production.found:
                raise FileNotFoundError(
                    f"{path} is neither a pushed version (no saved_model.pb) nor a serving "
                    f"folder with a production model ({production.reason})"
                )
            version_dir = production.record["model_uri"]
        folder = os.path.join(version_dir, spec.PUSHED_SUBDIR)
        if not fileio.exists(os.path.join(folder, spec.INDEX_FILE)):
            raise FileNotFoundError(
                f"the version {version_dir} has no gallery index ({folder}): it was pushed "
                f"without one (--no-gallery-index, or before the gallery existed)"
            )
        with fileio.open(os.path.join(folder, spec.INFO_FILE), "r") as f:
            info = json.loads(f.read())
        rows = gallery.read_rows(folder)
        return cls(
            version_dir=version_dir,
            serve=load_serving(version_dir),
            index=index_lib.read(os.path.join(folder, spec.INDEX_FILE)),
            ids=np.array(rows.column("id").to_pylist(), dtype=object),
            labels=np.array(rows.column("label").to_pylist(), dtype=object),
            threshold=info["match"]["threshold"],
            info=info,
        )

    @property
    def feature_names(self) -> list[str]:
        """The raw features the model takes (every one is needed; NaN = missing)."""
        return feature_names(self.serve)

    def embed(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Embeddings of raw feature columns (``{name: values}``), ``BATCH_ROWS`` at a time."""
        return embed_columns(self.serve, features, self.index.d)

    def search(self, embeddings: np.ndarray, k: int) -> Found:
        """The ``k`` nearest gallery rows of each embedding, and the match decisions."""
        sims, positions = index_lib.search(self.index, embeddings, k)
        found = positions >= 0
        ids = np.where(found, self.ids[np.maximum(positions, 0)], "")
        labels = np.where(found, self.labels[np.maximum(positions, 0)], "")
        sims = np.where(found, sims, -np.inf).astype(np.float32)
        match = (
            np.zeros(len(sims), bool) if self.threshold is None else sims[:, 0] >= self.threshold
        )
        return Found(ids, labels, sims, match)

    def query(self, features: dict[str, np.ndarray], k: int = 10) -> Found:
        """``search(embed(features), k)``."""
        return self.search(self.embed(features), k)
