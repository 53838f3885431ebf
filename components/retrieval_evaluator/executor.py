"""RetrievalEvaluator executor: embed the eval split (Beam), score retrieval, bless or not.

The candidate model, and the baseline (the latest blessed model) when one resolves, embed
the same raw eval examples through their ``serve_examples`` signature in one Beam pipeline.
The same pipeline scores two raw-feature baselines, the inputs themselves as the identity
embedding under the same cosine similarity:

- ``raw_features``: the model's raw features as read (the inputs of its ``serving_default``
  signature, in sorted name order; a missing or non-finite value counts as 0);
- ``transformed_features``: the same rows through the model's own Transform graph (its
  ``transform_features`` signature, the ``features`` vector the encoder reads).

The candidate is blessed when every threshold holds, its comparison metric beats the better
raw baseline by at least ``min_lift_over_raw`` (a model that separates worse than its own
inputs is refused, and the reason says so), and, with a baseline model, its comparison metric
is not worse than the baseline's by more than the tolerance.

Outputs follow TFX's Evaluator conventions (its own constants) so that
``LatestBlessedModelStrategy`` and Pusher work unchanged: the ``ModelBlessing`` has the int
``blessed`` property, ``current_model``, ``current_model_id`` (and ``baseline_model`` /
``baseline_model_id``), and a ``BLESSED`` or ``NOT_BLESSED`` file. The ``ModelEvaluation``
holds ``metrics.json`` (the candidate's metrics), ``evaluation.json`` (the decision and every
number behind it) and ``report/``.

The model ids on two orchestrators: locally they are ML Metadata's integer ids, which
``LatestBlessedModelStrategy`` resolves. On Kubeflow Pipelines v2 / Vertex AI an artifact is
known by its resource *name*, and the compiled resolver looks up the blessed model with
``name="<the blessing's current_model_id>"``; TFX's container entrypoint
(``kubeflow_v2_run_executor``) turns the integer ids it handed the executor back into those
names, but only for executors that are a kind of TFX's Evaluator executor. This executor is
one (it subclasses it and replaces ``Do`` entirely), so the conversion applies to its
blessing too. Tested through the entrypoint in ``tests/kubeflow/test_kfp_simulation.py``.
"""

from __future__ import annotations

import json
import math
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from tfx.components.evaluator import constants as tfx_evaluator
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.retrieval_evaluator import report as report_lib
from components.retrieval_evaluator import verification
from components.retrieval_evaluator.settings import ROUNDING, EvaluationSettings
from trainer_module.retrieval import metrics as metrics_lib

METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"
REPORT_DIR = "report"
LABEL_COLUMN_KEY = "label_column"
SETTINGS_KEY = "settings"
EMBED_SIGNATURE = "serve_examples"
TRANSFORM_SIGNATURE = "transform_features"
RAW_SIGNATURE = "serving_default"
TRANSFORMED_FEATURES_KEY = "features"
LOWER_IS_BETTER = frozenset({"eer", "overlap"})
# the raw-feature baselines (see the module docstring), scored beside every model
RAW_READ, RAW_TRANSFORMED = "raw_features", "transformed_features"
RAW_BASELINES = (RAW_READ, RAW_TRANSFORMED)


class _Embed(beam.DoFn):
    """Batches of serialized raw examples -> (label, vector) rows, one model per worker.

    ``source``: ``EMBED_SIGNATURE`` (the model's embedding), ``RAW_TRANSFORMED`` (its
    Transform output ``features``) or ``RAW_READ`` (the raw values of the features its
    ``serving_default`` signature takes, sorted by name; missing or non-finite values as 0).
    """

    def __init__(self, model_dir: str, label_column: str, source: str = EMBED_SIGNATURE):
        self._model_dir = model_dir
        self._label = label_column
        self._source = source
        self._fn = None
        self._names: list[str] = []

    def setup(self):
        signatures = tf.saved_model.load(self._model_dir).signatures
        wanted = {
            EMBED_SIGNATURE: EMBED_SIGNATURE,
            RAW_TRANSFORMED: TRANSFORM_SIGNATURE,
            RAW_READ: RAW_SIGNATURE,
        }[self._source]
        if wanted not in signatures:
            raise ValueError(
                f"the model in {self._model_dir} has no {wanted!r} signature (it has "
                f"{sorted(signatures)}); models exported by this project's Trainer have it"
            )
        self._fn = signatures[wanted]
        if self._source == RAW_READ:
            self._names = sorted(self._fn.structured_input_signature[1])

    def _vectors(self, batch: list[bytes], examples: list[tf.train.Example]) -> np.ndarray:
        if self._source == EMBED_SIGNATURE:
            return self._fn(examples=tf.constant(batch))["embedding"].numpy()
        if self._source == RAW_TRANSFORMED:
            out = self._fn(examples=tf.constant(batch))[TRANSFORMED_FEATURES_KEY].numpy()
            return out.reshape(len(batch), -1)
        values = np.zeros((len(batch), len(self._names)), np.float32)
        for i, example in enumerate(examples):
            feature = example.features.feature
            for j, name in enumerate(self._names):
                if name in feature and feature[name].float_list.value:
                    values[i, j] = feature[name].float_list.value[0]
        return np.where(np.isfinite(values), values, 0.0)

    def process(self, batch: list[bytes]):
        examples = [tf.train.Example.FromString(serialized) for serialized in batch]
        out = self._vectors(batch, examples)
        for example, vector in zip(examples, out, strict=True):
            label = example.features.feature[self._label].bytes_list.value[0].decode()
            yield label, vector.astype(np.float32)


def _to_npz_bytes(rows: list[tuple[str, np.ndarray]]) -> bytes:
    import io

    rows = sorted(rows, key=lambda r: (r[0], r[1].tobytes()))  # order-independent result
    buf = io.BytesIO()
    np.savez(
        buf,
        labels=np.asarray([r[0] for r in rows]),
        embeddings=np.stack([r[1] for r in rows]) if rows else np.zeros((0, 0), np.float32),
    )
    return buf.getvalue()


def embed_splits(
    pipeline: beam.Pipeline,
    patterns: dict[str, str],
    models: dict[str, str],
    label_column: str,
    out_dir: str,
    batch_size: int = 256,
    raw_baselines_of: str = "",
) -> None:
    """Adds Beam steps embedding each split with each model into ``<model>-<split>.npz``.

    With ``raw_baselines_of`` (a model name), the raw-feature baselines of that model's
    inputs are written the same way, as ``raw_features-<split>.npz`` and
    ``transformed_features-<split>.npz``.
    """
    sources = {name: (model_dir, EMBED_SIGNATURE) for name, model_dir in models.items()}
    if raw_baselines_of:
        sources |= {raw: (models[raw_baselines_of], raw) for raw in RAW_BASELINES}
    for split, pattern in patterns.items():
        raw = pipeline | f"Read[{split}]" >> beam.io.ReadFromTFRecord(pattern)
        batches = raw | f"Batch[{split}]" >> beam.BatchElements(
            min_batch_size=min(32, batch_size), max_batch_size=batch_size
        )
        for name, (model_dir, source) in sources.items():
            tag = f"{name}-{split}"
            _ = (
                batches
                | f"Embed[{tag}]" >> beam.ParDo(_Embed(model_dir, label_column, source))
                | f"Collect[{tag}]" >> beam.combiners.ToList()
                | f"Npz[{tag}]" >> beam.Map(_to_npz_bytes)
                | f"Write[{tag}]"
                >> beam.io.WriteToText(
                    os.path.join(out_dir, tag),
                    file_name_suffix=".npz",
                    shard_name_template="",
                    coder=beam.coders.BytesCoder(),
                    append_trailing_newlines=False,
                )
            )


def load_embeddings(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, labels)`` written by ``embed_split``."""
    with fileio.open(path, "rb") as f:
        import io

        data = np.load(io.BytesIO(f.read()))
        return data["embeddings"], data["labels"]


def score(
    queries: tuple[np.ndarray, np.ndarray],
    gallery: tuple[np.ndarray, np.ndarray] | None,
    ks: list[int],
    seed: int = 0,
) -> dict:
    """Every metric of one model; ``metrics`` holds the flat numbers.

    Retrieval runs leave-one-out, or against ``gallery``; NMI and the verification metrics
    use the query embeddings.
    """
    emb, labels = queries
    retrieval = metrics_lib.retrieval_metrics(
        emb,
        labels,
        ks,
        gallery_embeddings=None if gallery is None else gallery[0],
        gallery_labels=None if gallery is None else gallery[1],
        details=True,
    )
    pairs = verification.pair_distances(emb, labels, seed=seed)
    verify = verification.summarise_pairs(*pairs)
    flat = {k: v for k, v in retrieval.items() if isinstance(v, (int, float))}
    flat["nmi"] = verification.cluster_nmi(emb, labels, seed=seed)
    flat.update(verify)
    return {"metrics": flat, "retrieval": retrieval, "verification": verify, "pairs": pairs}


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
) -> tuple[bool, list[str]]:
    """``(blessed, reasons)``: every threshold holds, the raw inputs and the baseline are beaten.

    With ``raw`` (name -> metrics of the raw-feature baselines) and ``min_lift_over_raw``,
    the candidate's ``lift_over_raw`` on the comparison metric must be at least
    ``min_lift_over_raw``; raw baselines whose metric is not finite cannot be compared with,
    and a warning says so.

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


class Executor(tfx_evaluator_executor.Executor):
    """Scores candidate (and baseline) retrieval on the eval split; writes the blessing.

    A subclass of TFX's Evaluator executor only so that the KFP v2 entrypoint converts the
    blessing's model ids into artifact names (see the module docstring); nothing of TFMA runs.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Embeds, computes metrics, decides and writes evaluation and blessing."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        baselines = input_dict.get("baseline_model") or []
        baseline = baselines[0] if baselines else None
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])

        settings = EvaluationSettings.from_json(
            exec_properties.get(SETTINGS_KEY) or "",
            complete=True,
            source="RetrievalEvaluator's settings",
        )
        label_column = exec_properties[LABEL_COLUMN_KEY]
        split, query_split, gallery_split = (
            settings.split,
            settings.query_split,
            settings.gallery_split,
        )
        thresholds, comparison_metric = settings.thresholds, settings.comparison_metric
        tolerance = settings.comparison_tolerance

        models = {"candidate": path_utils.serving_model_path(model.uri)}
        same_as_baseline = baseline is not None and baseline.id == model.id
        if baseline is not None and not same_as_baseline:
            models["baseline"] = path_utils.serving_model_path(baseline.uri)
        splits = [query_split, gallery_split] if query_split else [split]
        available = artifact_utils.decode_split_names(examples.split_names)
        for name in splits:
            if name not in available:
                raise ValueError(f"split {name!r} is not in {examples.uri}: {available}")
        patterns = {
            name: os.path.join(artifact_utils.get_split_uri([examples], name), "*")
            for name in splits
        }
        emb_dir = os.path.join(evaluation.uri, "embeddings")
        with self._make_beam_pipeline() as p:
            embed_splits(p, patterns, models, label_column, emb_dir, raw_baselines_of="candidate")

        results = {}
        for name in [*models, *RAW_BASELINES]:
            loaded = {s: load_embeddings(os.path.join(emb_dir, f"{name}-{s}.npz")) for s in splits}
            for s, (_, labels) in loaded.items():
                if len(labels) == 0:
                    raise ValueError(f"split {s!r} of {examples.uri} is empty")
            results[name] = score(
                loaded[splits[0]],
                loaded[splits[-1]] if query_split else None,
                settings.recall_at_k,
                seed=settings.seed,
            )
        if same_as_baseline:
            results["baseline"] = results["candidate"]
        candidate = results["candidate"]["metrics"]
        base_metrics = results["baseline"]["metrics"] if "baseline" in results else None
        raw_metrics = {name: results[name]["metrics"] for name in RAW_BASELINES}
        lift, lift_over = lift_over_raw(candidate, raw_metrics, comparison_metric)
        blessed, reasons = decide(
            candidate,
            base_metrics,
            thresholds,
            comparison_metric,
            tolerance,
            raw=raw_metrics,
            min_lift_over_raw=settings.min_lift_over_raw,
        )
        lone = results["candidate"]["retrieval"]["classes_without_positive"]
        if lone:
            logging.warning(
                "%d class(es) have one example in the gallery and add no R-Precision/MAP@R "
                "term: %s",
                len(lone),
                ", ".join(lone[:20]),
            )
        report_path, report_errors = None, []
        try:
            report_path, report_errors = report_lib.write_report(
                os.path.join(evaluation.uri, REPORT_DIR),
                results,
                *load_embeddings(os.path.join(emb_dir, f"candidate-{splits[0]}.npz")),
                settings.metric_names,
                {"blessed": blessed, "reasons": reasons},
            )
        except Exception as e:  # the report must never cost the evaluation and the blessing
            report_errors = [f"the report could not be written: {type(e).__name__}: {e}"]
        for error in report_errors:
            logging.warning("report: %s", error)

        record = {
            "blessed": blessed,
            "reasons": reasons,
            "split": split if not query_split else None,
            "query_split": query_split or None,
            "gallery_split": gallery_split or None,
            "report": report_path,
            "report_errors": report_errors,
            "candidate_model": {
                "id": model.id,
                "uri": model.uri,
                "metrics": candidate,
                "per_class": results["candidate"]["retrieval"]["per_class"],
                "classes_without_positive": lone,
            },
            "baseline_model": (
                {"id": baseline.id, "uri": baseline.uri, "metrics": base_metrics}
                if baseline is not None
                else None
            ),
            "raw_baselines": raw_metrics,
            "lift_over_raw": {"value": lift, "over": lift_over, "metric": comparison_metric},
            "min_lift_over_raw": settings.min_lift_over_raw,
            "thresholds": thresholds,
            "comparison_metric": comparison_metric,
            "comparison_tolerance": tolerance,
        }
        io_utils.write_string_file(
            os.path.join(evaluation.uri, METRICS_FILE), json.dumps(candidate, indent=2)
        )
        io_utils.write_string_file(
            os.path.join(evaluation.uri, EVALUATION_FILE), json.dumps(record, indent=2)
        )
        _write_blessing(blessing, blessed, model, baseline)
        logging.info("retrieval metrics (candidate): %s", json.dumps(candidate))
        for name, raw in raw_metrics.items():
            logging.info("retrieval metrics (%s): %s", name, json.dumps(raw))
        if base_metrics is not None:
            logging.info(
                "retrieval metrics (baseline %d): %s", baseline.id, json.dumps(base_metrics)
            )
        logging.info("blessed: %s %s", blessed, "; ".join(reasons))


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
