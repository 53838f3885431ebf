"""What the gallery reads from the evaluation of its model instead of computing it again.

The RetrievalEvaluator that blessed the model has already embedded the eval split with it
(its ``EMBEDDINGS_DIR``, source ``CANDIDATE``) and searched a seeded sample of that split
leave-one-out, keeping each query's first neighbour (``NEAREST_FILE``). The gallery needs
exactly that: the eval split's rows (a gallery split) and, for the match threshold, each
sampled query's nearest other row of the split (``calibration.nearest_neighbours``). Both are
read from the evaluation (``from_evaluation``) when it scored this model on these examples
leave-one-out on the calibration split, with the same seed (row keys, hence the gallery's
ids and the query sample, depend on it) and the same number of queries; otherwise, or
without the ``evaluation`` input, the gallery embeds and searches the split itself and its
info says why (``reused_from`` None, ``not_reused`` the reason).

The first neighbour is the one ``search.search`` returns for any ``k`` (ties to the lower
row), over the same shards in the same order: the calibration is the one the gallery would
compute. ``nearest_for`` checks that the evaluation's queries are the calibration's own
sample (their keys, in order) before they are used.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from tfx_metric_learning.components.gallery_index import spec
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator import embeddings
from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """The evaluation's eval-split shards and the first neighbour of each of its queries."""

    uri: str
    shards: embeddings.EmbeddingShards
    nearest: dict  # keys, similarity, correct (``NEAREST_FILE``)


def from_evaluation(
    evaluations: list, model_uri: str, examples_uri: str, settings: GallerySettings
) -> tuple[Evaluated | None, str]:
    """``(Evaluated, "")`` when the evaluation stands for the gallery's own, else ``(None, why)``.

    ``evaluations``: the optional, single evaluation input (see the module doc).
    """
    if not evaluations:
        return None, "no evaluation input"
    uri = artifact_utils.get_single_uri(evaluations)
    path = os.path.join(uri, evaluator_spec.EVALUATION_FILE)
    if not fileio.exists(path):
        return None, f"{path} does not exist"
    with fileio.open(path) as f:
        record = json.loads(f.read())
    scored_on = record.get("scored_on") or {}
    checks = (
        ((record.get("candidate_model") or {}).get("uri") == model_uri, "another model"),
        (scored_on.get("examples") == examples_uri, "other examples"),
        (
            scored_on.get("split") == spec.CALIBRATION_SPLIT and not scored_on.get("query_split"),
            f"not the {spec.CALIBRATION_SPLIT!r} split leave-one-out",
        ),
        (scored_on.get("seed") == settings.seed, "another seed"),
        (
            scored_on.get("max_eval_queries") == settings.max_calibration_queries,
            "another number of queries",
        ),
    )
    differs = [what for ok, what in checks if not ok]
    if differs:
        return None, f"the evaluation scored {', '.join(differs)}"
    nearest_path = os.path.join(uri, evaluator_spec.NEAREST_FILE)
    if not fileio.exists(nearest_path):
        return None, f"{nearest_path} does not exist"
    try:
        shards = embeddings.EmbeddingShards(
            os.path.join(uri, evaluator_spec.EMBEDDINGS_DIR),
            evaluator_spec.CANDIDATE,
            spec.CALIBRATION_SPLIT,
        )
    except FileNotFoundError as e:
        return None, str(e)
    with fileio.open(nearest_path, "rb") as f:
        with np.load(io.BytesIO(f.read())) as data:
            nearest = {name: data[name] for name in ("keys", "similarity", "correct")}
    return Evaluated(uri, shards, nearest), ""


def nearest_for(
    evaluated: Evaluated | None, keys: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(similarity, correct)`` of the calibration's queries from the evaluation, or None.

    ``queries``: positions in the split whose row keys are ``keys``; None when the
    evaluation's queries are not those (their keys, in order).
    """
    if evaluated is None:
        return None
    found = evaluated.nearest
    if not np.array_equal(found["keys"], np.asarray(keys)[queries]):
        return None
    return np.asarray(found["similarity"], np.float64), np.asarray(found["correct"], bool)
