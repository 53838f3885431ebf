"""The input baselines of an evaluation: the raw features and the classic linear methods.

Measured once per data by the ``InputBaselines`` component (``measure``: the raw features and
Transform's graph embedded, the classic baselines fit, all scored), or by an evaluation
without that input (``fit_splits``, ``classic_baselines``, ``score_baselines``), and reused
by every evaluation of the same examples and query sample (``reused_baselines``, checked with
``baselines_key``): they depend on the data, not on the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from tfx_metric_learning.components.retrieval_evaluator import classic, scoring
from tfx_metric_learning.components.retrieval_evaluator import embeddings as embeddings_lib
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.components.retrieval_evaluator.spec import EVALUATION_FILE
from tfx_metric_learning.core.splits import TRAIN as TRAIN_SPLIT
from tfx_metric_learning.core.splits import VALID as VALID_SPLIT

RAW_BASELINES = embeddings_lib.RAW_BASELINES
RAW_TRANSFORMED = embeddings_lib.RAW_TRANSFORMED


def fit_splits(settings: EvaluationSettings, examples) -> dict[str, str]:
    """``{split: file pattern}`` the classic baselines are fit on: train, and valid if there."""
    if not settings.classic_baselines:
        return {}
    available = artifact_utils.decode_split_names(examples.split_names)
    return {
        name: os.path.join(artifact_utils.get_split_uri([examples], name), "*")
        for name in (TRAIN_SPLIT, VALID_SPLIT)
        if name in available
    }


def classic_baselines(
    emb_dir: str, fit: dict[str, str], scored_splits: list[str], settings: EvaluationSettings
) -> dict[str, dict]:
    """Fits the classic baselines and writes their shards for ``scored_splits``.

    ``classic.fit_classic`` on the transformed features of ``fit``'s splits (a seeded sample
    of at most ``classic_fit_rows``); returns what each chose.
    """
    if TRAIN_SPLIT not in fit:
        return {}
    rows = settings.classic_fit_rows
    train = embeddings_lib.read_sample(emb_dir, RAW_TRANSFORMED, TRAIN_SPLIT, rows)
    valid = None
    if VALID_SPLIT in fit:
        valid = embeddings_lib.read_sample(emb_dir, RAW_TRANSFORMED, VALID_SPLIT, rows)
    maps = classic.fit_classic(train, valid, settings.seed)
    for name, linear in maps.items():
        for split in scored_splits:
            embeddings_lib.write_mapped(emb_dir, RAW_TRANSFORMED, split, name, linear.apply)
    return {
        name: {
            **linear.describe(),
            "fit_rows": len(train[1]),
            "chosen_on": VALID_SPLIT if valid is not None else None,
        }
        for name, linear in maps.items()
    }


@dataclasses.dataclass
class Baselines:
    """The input baselines of an evaluation: measured here, or reused from another one.

    ``raw`` and ``classic``: name -> ``{"metrics", "sampling_error", ...}`` (the classic ones
    with what their fit chose); ``key``: what they were scored on (``baselines_key``);
    ``reused_from``: the evaluation they were read from, or None.
    """

    raw: dict
    classic: dict
    key: dict
    reused_from: str | None = None

    def metrics(self, which: str) -> dict[str, dict[str, float]]:
        return {name: entry["metrics"] for name, entry in getattr(self, which).items()}

    def table_rows(self) -> dict:
        """For the report's table: ``{"metrics", "retrieval": {"sampling_error"}}`` each."""
        return {
            name: {"metrics": e["metrics"], "retrieval": {"sampling_error": e["sampling_error"]}}
            for name, e in {**self.raw, **self.classic}.items()
        }


def baselines_key(examples, settings: EvaluationSettings) -> dict:
    """What input baselines depend on: a model's ``scoring.scores_key`` but the ks.

    The examples, the splits and the query sample, and the classic baselines' settings.
    """
    scored = scoring.scores_key(examples, settings)
    scored.pop("recall_at_k")
    return {
        **scored,
        "classic": settings.classic_baselines,
        "classic_fit_rows": settings.classic_fit_rows,
    }


def measured_baselines(results: dict, fitted: dict, key: dict) -> Baselines:
    """The baselines scored in this evaluation (``results``; ``fitted``: the classic fits)."""

    def entry(name):
        return {
            "metrics": results[name]["metrics"],
            "sampling_error": results[name]["retrieval"].get("sampling_error"),
        }

    return Baselines(
        raw={name: entry(name) for name in RAW_BASELINES},
        classic={name: {**entry(name), **fitted[name]} for name in fitted},
        key=key,
    )


def score_baselines(
    emb_dir: str, fit: dict[str, str], patterns: dict[str, str], settings, examples, key: dict
) -> tuple[Baselines, dict, dict[str, float]]:
    """Fits the classic baselines on ``emb_dir``'s shards and scores every input baseline.

    ``emb_dir`` holds the raw baselines' shards of ``patterns``' splits (and the transformed
    features of ``fit``'s); returns the baselines, each one's full ``scoring.score`` result
    (for the report's figures) and the seconds of each step.
    """
    started = time.perf_counter()
    fitted = classic_baselines(emb_dir, fit, list(patterns), settings) if fit else {}
    seconds = {"fit_classic": time.perf_counter() - started}
    results, _, scored = scoring.score_all(
        emb_dir, [*RAW_BASELINES, *fitted], patterns, settings, examples.uri
    )
    return measured_baselines(results, fitted, key), results, {**seconds, **scored}


def measure(
    make_pipeline, examples, transform_graph: str, label_column: str, settings, emb_dir: str
) -> tuple[Baselines, dict[str, float]]:
    """The input baselines of ``examples``: embedded in one Beam pipeline, then scored.

    ``make_pipeline()`` gives the Beam pipeline (the executor's); the raw features and their
    transform by ``transform_graph`` (a Transform graph's folder) are written to ``emb_dir``
    for the scored splits, and the transformed features of the classic baselines' fit
    splits; then ``score_baselines``.
    """
    patterns = scoring.splits_to_read(settings, examples)
    fit = fit_splits(settings, examples)
    started = time.perf_counter()
    with make_pipeline() as p:
        embeddings_lib.embed_splits(
            p,
            patterns,
            {},
            label_column,
            emb_dir,
            seed=settings.seed,
            transformed_patterns={k: v for k, v in fit.items() if k not in patterns},
            transformed_rows=settings.classic_fit_rows,
            transform_graph=transform_graph,
        )
    embedded = time.perf_counter() - started
    baselines, _, seconds = score_baselines(
        emb_dir, fit, patterns, settings, examples, baselines_key(examples, settings)
    )
    return baselines, {"embed": embedded, **seconds}


def reused_baselines(artifacts: list, key: dict) -> Baselines | None:
    """The baselines of the evaluation in ``artifacts`` (the optional ``baselines`` input).

    None without one. Another evaluation's baselines are reused only when they were scored
    on the same examples, splits and query sample (``baselines_key``); otherwise
    ``ValueError`` names what differs (the pipeline wires only matching evaluations).
    """
    if not artifacts:
        return None
    source = artifact_utils.get_single_instance(artifacts)
    with fileio.open(os.path.join(source.uri, EVALUATION_FILE)) as f:
        record = json.loads(f.read())
    theirs = record.get("baselines", {}).get("key")
    if theirs != key:
        differs = sorted(k for k in key if (theirs or {}).get(k) != key[k])
        raise ValueError(
            f"the baselines of {source.uri} were scored on other data or settings "
            f"({', '.join(differs)} differ): they cannot stand for this evaluation's"
        )
    found = record["baselines"]
    return Baselines(found["raw"], found["classic"], key, reused_from=source.uri)
