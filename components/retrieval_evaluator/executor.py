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
transformed features of the train split, sized on the valid split. Given the ``baselines``
input (the pipeline's ``InputBaselines``, which scores them once per data from Transform's
graph, or another evaluation) of the same examples and query sample, those are read instead
(``reused_baselines``) and only the models are embedded and scored.

The production model's scores are read from its production record instead of measured when
the record says they were measured on the same examples and query sample
(``production_scores``): the evaluation that blessed it scored it there as its candidate.

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
candidate's metrics), ``evaluation.json`` (the decision and every number behind it),
``report/``, the embedding shards it scored (``embeddings/``) and ``nearest.npz`` (each of the
candidate's queries' first neighbour): the GalleryIndex of the same model reads the last two
instead of embedding and searching the eval split again (``gallery_index/evaluated.py``).

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
import io
import json
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
from tfx_metric_learning.components.retrieval_evaluator import baselines as baselines_lib
from tfx_metric_learning.components.retrieval_evaluator import embeddings as embeddings_lib
from tfx_metric_learning.components.retrieval_evaluator import gate, scoring
from tfx_metric_learning.components.retrieval_evaluator import report as report_lib
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.components.retrieval_evaluator.spec import (
    BASELINE_MODEL_KEY,
    BASELINES_KEY,
    BLESSING_KEY,
    BLESSING_METRICS_FILE,
    CANDIDATE,
    EMBEDDINGS_DIR,
    EVALUATION_FILE,
    EVALUATION_KEY,
    EXAMPLES_KEY,
    LABEL_COLUMN_KEY,
    METRICS_FILE,
    MODEL_KEY,
    NEAREST_FILE,
    REPORT_DIR,
    SETTINGS_KEY,
)


def write_report_safely(
    out_dir: str, scored: scoring.Scored, settings, decision: dict, reused=None
):
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
    scored: scoring.Scored,
    settings: EvaluationSettings,
    model,
    baseline,
    decision: tuple[bool, list[str]],
    lifts: dict[str, tuple],
    report: tuple,
    baselines: baselines_lib.Baselines,
    base_scores: dict | None = None,
) -> dict:
    """``EVALUATION_FILE``: the decision and every number behind it.

    ``lifts``: ``gate.lift_over`` the ``raw`` and the ``classic`` baselines.
    ``base_scores``: the baseline model's ``{"metrics", "reused_from"}`` (``reused_from``:
    None when scored here).
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
                "metrics": base_scores["metrics"],
                "scores_reused_from": base_scores["reused_from"],
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
        models = {CANDIDATE: path_utils.serving_model_path(model.uri)}
        same_as_baseline = baseline is not None and baseline.id == model.id
        if baseline is not None and not same_as_baseline:
            models["baseline"] = path_utils.serving_model_path(baseline.uri)
        production = None
        if "baseline" in models:
            production = production_scores(baseline, scoring.scores_key(examples, settings))
            if production is not None:
                del models["baseline"]  # scored on these examples when it was blessed
                logging.info("production scores reused: %s", production["reused_from"])
        key = baselines_lib.baselines_key(examples, settings)
        reused = baselines_lib.reused_baselines(input_dict.get(BASELINES_KEY) or [], key)
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
        base_scores = production
        if "baseline" in results:
            base_scores = {"metrics": results["baseline"]["metrics"], "reused_from": None}
        base_metrics = base_scores["metrics"] if base_scores else None
        raw_metrics, classic_metrics = baselines.metrics("raw"), baselines.metrics("classic")
        blessed, reasons = gate.decide(
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
        table_only = baselines.table_rows() if reused is not None else {}
        if production is not None:
            table_only["baseline"] = {
                "metrics": production["metrics"],
                "retrieval": {"sampling_error": None},
            }
        report = write_report_safely(
            os.path.join(evaluation.uri, REPORT_DIR),
            scored,
            settings,
            {"blessed": blessed, "reasons": reasons},
            reused=table_only or None,
        )
        for error in report[1]:
            logging.warning("report: %s", error)
        scored.seconds["report"] = time.perf_counter() - started
        lifts = {
            "raw": gate.lift_over(candidate, raw_metrics, settings.comparison_metric),
            "classic": gate.lift_over(candidate, classic_metrics, settings.comparison_metric),
        }
        record = evaluation_record(
            scored,
            settings,
            model,
            baseline,
            (blessed, reasons),
            lifts,
            report,
            baselines,
            base_scores,
        )
        record["scored_on"] = scoring.scores_key(examples, settings)
        write_nearest(evaluation.uri, results[CANDIDATE]["nearest"])
        write_outputs(evaluation.uri, blessing, record, model, baseline)

    def _embed_and_score(self, examples, models, label_column, settings, emb_dir, reused, key):
        """``(Scored, Baselines)``: the models embedded (one Beam pipeline) and scored.

        Without ``reused`` baselines the same pipeline writes the raw baselines' features of
        the eval split and the transformed features of the splits the classic baselines are
        fit on (``fit_splits``); they are fit and scored here.
        """
        patterns = scoring.splits_to_read(settings, examples)
        fit = baselines_lib.fit_splits(settings, examples) if reused is None else {}
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
                transformed_rows=settings.classic_fit_rows,
            )
        seconds = {"embed": time.perf_counter() - started}
        results, queries, score_seconds = scoring.score_all(
            emb_dir, list(models), patterns, settings, examples.uri
        )
        seconds.update(score_seconds)
        baselines = reused
        if baselines is None:
            baselines, measured, baseline_seconds = baselines_lib.score_baselines(
                emb_dir, fit, patterns, settings, examples, key
            )
            results.update(measured)
            seconds.update(baseline_seconds)
        return scoring.Scored(results, queries, seconds), baselines


def write_nearest(evaluation_uri: str, nearest: dict) -> None:
    """``NEAREST_FILE``: the candidate's queries' keys and first neighbours (see the spec)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        keys=nearest["keys"],
        similarity=nearest["similarity"],
        correct=nearest["correct"],
    )
    with fileio.open(os.path.join(evaluation_uri, NEAREST_FILE), "wb") as f:
        f.write(buffer.getvalue())


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
        "scored_on": record["scored_on"],  # what the metrics were measured on
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


def production_scores(baseline, key: dict) -> dict | None:
    """The production model's metrics as its record holds them, when scored on ``key``.

    The Pusher records the metrics the evaluation that blessed a model measured, and on what
    (``scored_on``: ``scoring.scores_key``, the examples artifact and the query sample). The
    same examples and settings give the same scores to the same model, so they are reused
    instead of embedding and scoring it again; None when the record was scored on anything
    else (new data, another sample or ks, a record written before ``scored_on`` existed).
    Returns ``{"metrics", "reused_from"}``.
    """
    path = os.path.join(baseline.uri, production_spec.FOUND_FILE)
    if not fileio.exists(path):
        return None
    with fileio.open(path) as f:
        record = json.loads(f.read()).get("record") or {}
    if not record.get("metrics") or record.get("scored_on") != key:
        return None
    return {
        "metrics": record["metrics"],
        "reused_from": f"the production record of version {record.get('version')}",
    }


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
