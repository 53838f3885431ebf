"""RetrievalEvaluator executor: embed the eval split (Beam), score retrieval, bless or not.

The candidate model, and the baseline (the production model, ``components/production``, when
the run's ``ProductionModel`` found one) embed the same raw eval examples through their
``serve_examples`` signature in one Beam pipeline.
The same pipeline scores two raw-feature baselines, the inputs themselves as the identity
embedding under the same cosine similarity:

- ``raw_features``: the model's raw features as read (the inputs of its ``serving_default``
  signature, in sorted name order; a missing or non-finite value counts as 0);
- ``transformed_features``: the same rows through the model's own Transform graph (its
  ``transform_features`` signature, the ``features`` vector the encoder reads).

and the classic linear baselines (``classic``: PCA whitening, regularised LDA), fit on the
transformed features of the train split, sized on the valid split. Given another evaluation
of the same examples and query sample (the ``baselines`` input: a comparison's first branch),
its input baselines are reused instead (``reused_baselines``).

The candidate is blessed when every threshold holds, its comparison metric beats the better
raw baseline by at least ``min_lift_over_raw`` (and the better classic one by
``min_lift_over_classic``, when set) (a model that separates worse than its own
inputs is refused, and the reason says so), and, with a baseline model, its comparison metric
is not worse than the baseline's by more than the tolerance.

Outputs follow TFX's Evaluator conventions (its own constants) so that TFX's Pusher logic
works unchanged: the ``ModelBlessing`` has the int ``blessed`` property, ``current_model``,
``current_model_id`` (and ``baseline_model`` / ``baseline_model_id``), and a ``BLESSED`` or
``NOT_BLESSED`` file, plus ``spec.BLESSING_METRICS_FILE`` (what the Pusher records as the
metrics production was blessed with). The ``ModelEvaluation`` holds ``metrics.json`` (the
candidate's metrics), ``evaluation.json`` (the decision and every number behind it) and
``report/``.

The model ids: locally they are ML Metadata's integer ids. On Kubeflow Pipelines v2 / Vertex
AI an artifact is known by its resource *name*; TFX's container entrypoint
(``kubeflow_v2_run_executor``) turns the integer ids it handed the executor back into those
names, but only for executors that are a kind of TFX's Evaluator executor. This executor is
one (it subclasses it and replaces ``Do`` entirely), so the blessing names the models as the
backend knows them. Nothing reads them back to find a model: production is the record at the
serving location.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import numpy as np
from absl import logging
from tfx.components.evaluator import constants as tfx_evaluator
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.production.executor import has_model
from tfx_metric_learning.components.retrieval_evaluator import classic, verification
from tfx_metric_learning.components.retrieval_evaluator import embeddings as embeddings_lib
from tfx_metric_learning.components.retrieval_evaluator import report as report_lib
from tfx_metric_learning.components.retrieval_evaluator.settings import ROUNDING, EvaluationSettings
from tfx_metric_learning.components.retrieval_evaluator.spec import (
    BASELINE_MODEL_KEY,
    BASELINES_KEY,
    BLESSING_KEY,
    BLESSING_METRICS_FILE,
    EMBEDDINGS_DIR,
    EVALUATION_FILE,
    EVALUATION_KEY,
    EXAMPLES_KEY,
    LABEL_COLUMN_KEY,
    METRICS_FILE,
    MODEL_KEY,
    REPORT_DIR,
    SETTINGS_KEY,
)
from tfx_metric_learning.core.retrieval import metrics as metrics_lib
from tfx_metric_learning.core.retrieval import search
from tfx_metric_learning.core.splits import TRAIN as TRAIN_SPLIT
from tfx_metric_learning.core.splits import VALID as VALID_SPLIT

LOWER_IS_BETTER = frozenset({"eer", "overlap"})
RAW_BASELINES = embeddings_lib.RAW_BASELINES
RAW_TRANSFORMED = embeddings_lib.RAW_TRANSFORMED
CLASSIC_BASELINES = classic.CLASSIC_BASELINES


def score(
    queries: tuple[np.ndarray, np.ndarray],
    gallery: tuple[np.ndarray | search.Tiles, np.ndarray] | None,
    ks: list[int],
    seed: int = 0,
    query_ids: np.ndarray | None = None,
    population: int | None = None,
) -> dict:
    """Every metric of one model; ``metrics`` holds the flat numbers.

    Retrieval runs leave-one-out, or against ``gallery`` (embeddings or tiles, and labels),
    leave-one-out on it when ``query_ids`` place the queries in it; ``population`` is the
    number of rows the queries were sampled from (``retrieval_metrics``). NMI and the
    verification metrics use the query embeddings.
    """
    emb, labels = queries
    retrieval = metrics_lib.retrieval_metrics(
        emb,
        labels,
        ks,
        gallery_embeddings=None if gallery is None else gallery[0],
        gallery_labels=None if gallery is None else gallery[1],
        details=True,
        query_ids=query_ids,
        population=population,
    )
    pairs = verification.pair_distances(emb, labels, seed=seed)
    verify = verification.summarise_pairs(*pairs)
    flat = {k: v for k, v in retrieval.items() if isinstance(v, (int, float))}
    flat["nmi"] = verification.cluster_nmi(emb, labels, seed=seed)
    flat.update(verify)
    return {"metrics": flat, "retrieval": retrieval, "verification": verify, "pairs": pairs}


def score_shards(
    emb_dir: str,
    source: str,
    query_split: str,
    gallery_split: str | None,
    ks: list[int],
    seed: int = 0,
    max_queries: int = 0,
    examples_uri: str = "",
) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """``score`` of one source's shards, and the ``(embeddings, labels)`` of its queries.

    Leave-one-out on ``query_split`` without a ``gallery_split``. With ``max_queries``, the
    queries are a seeded sample of that many rows (``embeddings.sample_rows``) that search the
    whole gallery; the retrieval metrics then carry their ``sampling_error``. The gallery is
    read tile by tile (``EmbeddingShards.tiles``); only the queries are held in memory.
    """
    shards = embeddings_lib.EmbeddingShards(emb_dir, source, query_split)
    labels, keys = shards.index()
    if len(labels) == 0:
        raise ValueError(f"split {query_split!r} of {examples_uri or emb_dir} is empty")
    rows = embeddings_lib.sample_rows(keys, max_queries)
    sampled = len(rows) < len(labels)
    queries = (shards.take(rows), labels[rows])
    if gallery_split:
        g_shards = embeddings_lib.EmbeddingShards(emb_dir, source, gallery_split)
        g_labels, _ = g_shards.index()
        if len(g_labels) == 0:
            raise ValueError(f"split {gallery_split!r} of {examples_uri or emb_dir} is empty")
        gallery, ids = (g_shards.tiles(), g_labels), None
    elif sampled:
        gallery, ids = (shards.tiles(), labels), rows
    else:
        gallery, ids = None, None
    result = score(
        queries, gallery, ks, seed=seed, query_ids=ids, population=len(labels) if sampled else None
    )
    return result, queries


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def lift_over_raw(
    candidate: dict[str, float], raw: dict[str, dict[str, float]], metric: str
) -> tuple[float | None, str | None]:
    """``(lift, baseline name)``: ``metric`` of the candidate minus the best raw baseline's.

    The best raw baseline is the one with the better ``metric`` (the higher, or the lower for
    ``LOWER_IS_BETTER`` metrics, where the lift is the baseline's value minus the
    candidate's, so a positive lift always means the model separates better than its
    inputs; a lift within ``ROUNDING`` of 0 is 0). Baselines whose ``metric`` is not finite
    are left out; ``(None, None)`` when none is left or the candidate's is not finite.
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    usable = {name: m[metric] for name, m in raw.items() if _finite(m.get(metric))}
    if not usable or not _finite(candidate.get(metric)):
        return None, None
    best = max(sorted(usable), key=lambda name: sign * usable[name])
    lift = sign * (candidate[metric] - usable[best])
    return (0.0 if abs(lift) < ROUNDING else lift), best


def decide(
    candidate: dict[str, float],
    baseline: dict[str, float] | None,
    thresholds: dict[str, float],
    comparison_metric: str,
    tolerance: float,
    raw: dict[str, dict[str, float]] | None = None,
    min_lift_over_raw: float | None = None,
    classic_metrics: dict[str, dict[str, float]] | None = None,
    min_lift_over_classic: float | None = None,
) -> tuple[bool, list[str]]:
    """``(blessed, reasons)``: every threshold holds, the raw inputs and the baseline are beaten.

    With ``raw`` (name -> metrics of the raw-feature baselines) and ``min_lift_over_raw``,
    the candidate's ``lift_over_raw`` on the comparison metric must be at least
    ``min_lift_over_raw``; raw baselines whose metric is not finite cannot be compared with,
    and a warning says so. ``classic_metrics`` and ``min_lift_over_classic`` are the same rule
    against the classic baselines (PCA whitening, LDA: ``classic``).

    A threshold is a minimum for metrics where higher is better and a maximum for those
    where lower is better (``LOWER_IS_BETTER``: the equal error rate and the overlap); the
    comparison with the baseline follows the same direction.

    A candidate with any metric that is not a finite number (NaN, inf: a broken model) is
    never blessed, and neither is one missing a metric the decision reads; a comparison
    with NaN would otherwise be false and let it through. Thresholds and the tolerance must
    be finite (``EvaluationSettings`` refuses others before the run; checked again here). A
    baseline whose comparison metric is not finite cannot be compared with: the candidate
    is then judged by the thresholds alone, and the reason says so.
    """
    bounds = [*thresholds.items(), ("comparison_tolerance", tolerance)]
    if min_lift_over_raw is not None:
        bounds.append(("min_lift_over_raw", min_lift_over_raw))
    if min_lift_over_classic is not None:
        bounds.append(("min_lift_over_classic", min_lift_over_classic))
    for name, value in bounds:
        if not _finite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    broken = sorted(k for k, v in candidate.items() if not _finite(v))
    read = sorted({*thresholds, comparison_metric} - set(candidate))
    if broken or read:
        return False, [
            *(f"candidate metric {k} is {candidate[k]!r}, not a finite number" for k in broken),
            *(f"candidate metric {k} is missing" for k in read),
        ]
    reasons = []
    for name, bound in sorted(thresholds.items()):
        value = candidate[name]
        if name in LOWER_IS_BETTER and value > bound:
            reasons.append(f"{name} {value:.4f} is above the threshold {bound:.4f}")
        elif name not in LOWER_IS_BETTER and value < bound:
            reasons.append(f"{name} {value:.4f} is below the threshold {bound:.4f}")
    if raw and min_lift_over_raw is not None:
        lift, best = lift_over_raw(candidate, raw, comparison_metric)
        if lift is None:
            logging.warning(
                "no raw-feature baseline has a finite %s: the lift over raw is not checked",
                comparison_metric,
            )
        elif lift < min_lift_over_raw:
            how = f"{-lift:.4f} worse" if lift < 0 else f"only {lift:.4f} better"
            reasons.append(
                f"{comparison_metric} {candidate[comparison_metric]:.4f} is {how} than the "
                f"{best} baseline's {raw[best][comparison_metric]:.4f} (the inputs themselves, "
                f"cosine similarity): the model separates "
                f"{'worse than' if lift < 0 else 'barely better than'} its own inputs "
                f"(--min-lift-over-raw {min_lift_over_raw:.4f})"
            )
    if classic_metrics and min_lift_over_classic is not None:
        lift, best = lift_over_raw(candidate, classic_metrics, comparison_metric)
        if lift is None:
            logging.warning(
                "no classic baseline has a finite %s: the lift over them is not checked",
                comparison_metric,
            )
        elif lift < min_lift_over_classic:
            how = f"{-lift:.4f} worse" if lift < 0 else f"only {lift:.4f} better"
            reasons.append(
                f"{comparison_metric} {candidate[comparison_metric]:.4f} is {how} than the "
                f"{best} baseline's {classic_metrics[best][comparison_metric]:.4f} (a linear "
                f"map fit on the train split) (--min-lift-over-classic "
                f"{min_lift_over_classic:.4f})"
            )
    if baseline is not None and not _finite(baseline.get(comparison_metric)):
        logging.warning(
            "the baseline's %s is %r: compared by the thresholds alone",
            comparison_metric,
            baseline.get(comparison_metric),
        )
    elif baseline is not None:
        cand, base = candidate[comparison_metric], baseline[comparison_metric]
        sign = -1.0 if comparison_metric in LOWER_IS_BETTER else 1.0
        if sign * (cand - base) < -tolerance:
            reasons.append(
                f"{comparison_metric} {cand:.4f} is worse than the baseline's {base:.4f} "
                f"(tolerance {tolerance:.4f})"
            )
    return not reasons, reasons


@dataclasses.dataclass
class Scored:
    """What was measured, per model and raw baseline, and how long each step took.

    ``candidate_queries``: the candidate's query embeddings and labels, for the report.
    """

    results: dict
    candidate_queries: tuple
    seconds: dict


def splits_to_read(settings: EvaluationSettings, examples) -> dict[str, str]:
    """``{split: file pattern}`` of the examples the evaluation reads (checked to exist)."""
    splits = (
        [settings.query_split, settings.gallery_split] if settings.query_split else [settings.split]
    )
    available = artifact_utils.decode_split_names(examples.split_names)
    for name in splits:
        if name not in available:
            raise ValueError(f"split {name!r} is not in {examples.uri}: {available}")
    return {
        name: os.path.join(artifact_utils.get_split_uri([examples], name), "*") for name in splits
    }


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


def score_all(
    emb_dir: str, names: list[str], patterns: dict, settings: EvaluationSettings, examples_uri
) -> tuple[dict, tuple, dict]:
    """``score_shards`` for each of ``names`` (models, then raw baselines).

    Returns their results, the candidate's queries and the seconds each took.
    """
    splits = list(patterns)
    results, candidate_queries, seconds = {}, None, {}
    for name in names:
        started = time.perf_counter()
        results[name], queries = score_shards(
            emb_dir,
            name,
            splits[0],
            settings.gallery_split if settings.query_split else None,
            settings.recall_at_k,
            seed=settings.seed,
            max_queries=settings.max_eval_queries,
            examples_uri=examples_uri,
        )
        if name == "candidate":
            candidate_queries = queries
        seconds[f"score_{name}"] = time.perf_counter() - started
    return results, candidate_queries, seconds


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
    """What input baselines depend on: the examples, the splits, the query sample."""
    return {
        "examples": examples.uri,
        "split": settings.split,
        "query_split": settings.query_split,
        "gallery_split": settings.gallery_split,
        "seed": settings.seed,
        "max_eval_queries": settings.max_eval_queries,
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


def write_report_safely(out_dir: str, scored: Scored, settings, decision: dict, reused=None):
    """``report_lib.write_report``, its failure turned into an error line: ``(path, errors)``.

    The report must never cost the evaluation and the blessing.
    """
    try:
        return report_lib.write_report(
            out_dir,
            scored.results,
            *scored.candidate_queries,
            settings.metric_names,
            decision,
            reused=reused,
        )
    except Exception as e:  # noqa: BLE001
        return None, [f"the report could not be written: {type(e).__name__}: {e}"]


def evaluation_record(
    scored: Scored,
    settings: EvaluationSettings,
    model,
    baseline,
    decision: tuple[bool, list[str]],
    lifts: dict[str, tuple],
    report: tuple,
    baselines: Baselines,
) -> dict:
    """``EVALUATION_FILE``: the decision and every number behind it.

    ``lifts``: ``lift_over_raw`` against the ``raw`` and the ``classic`` baselines.
    """
    results = scored.results
    blessed, reasons = decision
    return {
        "blessed": blessed,
        "reasons": reasons,
        "split": settings.split if not settings.query_split else None,
        "query_split": settings.query_split or None,
        "gallery_split": settings.gallery_split or None,
        "report": report[0],
        "report_errors": report[1],
        "candidate_model": {
            "id": model.id,
            "uri": model.uri,
            "metrics": results["candidate"]["metrics"],
            "sampling_error": results["candidate"]["retrieval"].get("sampling_error"),
            "per_class": results["candidate"]["retrieval"]["per_class"],
            "classes_without_positive": results["candidate"]["retrieval"][
                "classes_without_positive"
            ],
        },
        "baseline_model": (
            {
                "id": baseline.id,
                "uri": baseline.uri,
                "production_version": _production_version(baseline),
                "metrics": results["baseline"]["metrics"],
            }
            if baseline is not None
            else None
        ),
        "queries": {
            "scored": len(scored.candidate_queries[1]),
            "max_eval_queries": settings.max_eval_queries,
        },
        "seconds": scored.seconds,
        "raw_baselines": baselines.metrics("raw"),
        "classic_baselines": baselines.classic,
        "baselines": dataclasses.asdict(baselines),
        "lift_over_raw": {
            "value": lifts["raw"][0],
            "over": lifts["raw"][1],
            "metric": settings.comparison_metric,
        },
        "min_lift_over_raw": settings.min_lift_over_raw,
        "lift_over_classic": {
            "value": lifts["classic"][0],
            "over": lifts["classic"][1],
            "metric": settings.comparison_metric,
        },
        "min_lift_over_classic": settings.min_lift_over_classic,
        "thresholds": settings.thresholds,
        "comparison_metric": settings.comparison_metric,
        "comparison_tolerance": settings.comparison_tolerance,
    }


class Executor(tfx_evaluator_executor.Executor):
    """Scores candidate (and baseline) retrieval on the eval split; writes the blessing.

    A subclass of TFX's Evaluator executor only so that the KFP v2 entrypoint converts the
    blessing's model ids into artifact names (see the module docstring); nothing of TFMA runs.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Embeds, scores, decides, and writes the evaluation and the blessing."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        baseline = production_baseline(input_dict.get(BASELINE_MODEL_KEY) or [])
        evaluation = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        settings = EvaluationSettings.from_json(
            exec_properties.get(SETTINGS_KEY) or "",
            complete=True,
            source="RetrievalEvaluator's settings",
        )
        models = {"candidate": path_utils.serving_model_path(model.uri)}
        same_as_baseline = baseline is not None and baseline.id == model.id
        if baseline is not None and not same_as_baseline:
            models["baseline"] = path_utils.serving_model_path(baseline.uri)
        key = baselines_key(examples, settings)
        reused = reused_baselines(input_dict.get(BASELINES_KEY) or [], key)
        emb_dir = os.path.join(evaluation.uri, EMBEDDINGS_DIR)
        if fileio.exists(emb_dir):  # a retried execution starts from no shards
            fileio.rmtree(emb_dir)
        scored, baselines = self._embed_and_score(
            examples, models, exec_properties[LABEL_COLUMN_KEY], settings, emb_dir, reused, key
        )
        results = scored.results
        if same_as_baseline:
            results["baseline"] = results["candidate"]
        candidate = results["candidate"]["metrics"]
        base_metrics = results["baseline"]["metrics"] if "baseline" in results else None
        raw_metrics, classic_metrics = baselines.metrics("raw"), baselines.metrics("classic")
        blessed, reasons = decide(
            candidate,
            base_metrics,
            settings.thresholds,
            settings.comparison_metric,
            settings.comparison_tolerance,
            raw=raw_metrics,
            min_lift_over_raw=settings.min_lift_over_raw,
            classic_metrics=classic_metrics,
            min_lift_over_classic=settings.min_lift_over_classic,
        )
        lone = results["candidate"]["retrieval"]["classes_without_positive"]
        if lone:
            logging.warning(
                "%d class(es) have one example in the gallery and add no R-Precision/MAP@R "
                "term: %s",
                len(lone),
                ", ".join(lone[:20]),
            )
        started = time.perf_counter()
        report = write_report_safely(
            os.path.join(evaluation.uri, REPORT_DIR),
            scored,
            settings,
            {"blessed": blessed, "reasons": reasons},
            reused=baselines.table_rows() if reused is not None else None,
        )
        for error in report[1]:
            logging.warning("report: %s", error)
        scored.seconds["report"] = time.perf_counter() - started
        lifts = {
            "raw": lift_over_raw(candidate, raw_metrics, settings.comparison_metric),
            "classic": lift_over_raw(candidate, classic_metrics, settings.comparison_metric),
        }
        record = evaluation_record(
            scored, settings, model, baseline, (blessed, reasons), lifts, report, baselines
        )
        write_outputs(evaluation.uri, blessing, record, model, baseline)

    def _embed_and_score(self, examples, models, label_column, settings, emb_dir, reused, key):
        """``(Scored, Baselines)``: the models embedded (one Beam pipeline) and scored.

        Without ``reused`` baselines the same pipeline writes the raw baselines' features of
        the eval split and the transformed features of the splits the classic baselines are
        fit on (``fit_splits``); they are fit and scored here.
        """
        patterns = splits_to_read(settings, examples)
        fit = fit_splits(settings, examples) if reused is None else {}
        started = time.perf_counter()
        with self._make_beam_pipeline() as p:
            embeddings_lib.embed_splits(
                p,
                patterns,
                models,
                label_column,
                emb_dir,
                raw_baselines_of="candidate" if reused is None else "",
                seed=settings.seed,
                transformed_patterns={k: v for k, v in fit.items() if k not in patterns},
            )
        seconds = {"embed": time.perf_counter() - started}
        started = time.perf_counter()
        fitted = classic_baselines(emb_dir, fit, list(patterns), settings) if fit else {}
        seconds["fit_classic"] = time.perf_counter() - started
        names = [*models, *(RAW_BASELINES if reused is None else ()), *fitted]
        results, queries, score_seconds = score_all(
            emb_dir, names, patterns, settings, examples.uri
        )
        baselines = reused or measured_baselines(results, fitted, key)
        return Scored(results, queries, {**seconds, **score_seconds}), baselines


def write_outputs(evaluation_uri: str, blessing, record: dict, model, baseline) -> None:
    """The evaluation's files, then the blessing (TFX's, and what it was blessed with)."""
    candidate = record["candidate_model"]["metrics"]
    io_utils.write_string_file(
        os.path.join(evaluation_uri, METRICS_FILE), json.dumps(candidate, indent=2)
    )
    io_utils.write_string_file(
        os.path.join(evaluation_uri, EVALUATION_FILE), json.dumps(record, indent=2)
    )
    _write_blessing(blessing, record["blessed"], model, baseline)
    blessed_with = {
        "blessed": record["blessed"],
        "comparison_metric": record["comparison_metric"],
        "metrics": candidate,
    }
    io_utils.write_string_file(
        os.path.join(blessing.uri, BLESSING_METRICS_FILE), json.dumps(blessed_with, indent=2)
    )
    logging.info("retrieval metrics (candidate): %s", json.dumps(candidate))
    for name, raw in record["raw_baselines"].items():
        logging.info("retrieval metrics (%s): %s", name, json.dumps(raw))
    if record["baseline_model"] is not None:
        logging.info(
            "retrieval metrics (baseline %s): %s",
            record["baseline_model"]["id"],
            json.dumps(record["baseline_model"]["metrics"]),
        )
    logging.info("blessed: %s %s", record["blessed"], "; ".join(record["reasons"]))


def production_baseline(baselines: list) -> object | None:
    """The baseline model: the production model's artifact when it holds a model, else None.

    The ``ProductionModel`` component outputs its artifact on every run, with no model in it
    when nothing usable is in production (the first run): there is then no baseline.
    """
    if not baselines:
        return None
    if not has_model(baselines[0].uri):
        logging.info("no production model in %s: no baseline", baselines[0].uri)
        return None
    return baselines[0]


def _production_version(baseline) -> str | None:
    if baseline.has_custom_property(production_spec.VERSION_PROPERTY):
        return baseline.get_string_custom_property(production_spec.VERSION_PROPERTY) or None
    return None


def _write_blessing(blessing, blessed: bool, model, baseline) -> None:
    """TFX Evaluator's blessing: properties (ids as ints; see the module docstring) and file."""
    value = tfx_evaluator.BLESSED_VALUE if blessed else tfx_evaluator.NOT_BLESSED_VALUE
    blessing.set_int_custom_property(tfx_evaluator.ARTIFACT_PROPERTY_BLESSED_KEY, value)
    blessing.set_string_custom_property(
        tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_int_custom_property(tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri
        )
        blessing.set_int_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id
        )
    name = tfx_evaluator.BLESSED_FILE_NAME if blessed else tfx_evaluator.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
