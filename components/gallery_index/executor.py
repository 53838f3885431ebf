"""GalleryIndex executor: embed the gallery with the model, index it, calibrate, re-save.

Reads its properties; with a catalogue (``settings.gallery``) reads and checks it first
(``catalogue_rows``: refused before anything is embedded) and embeds it in-process with the
model's ``serving_default``. The model embeds the eval split (the calibration's queries) and,
without a catalogue, every gallery split (``retrieval_evaluator.embeddings.embed_splits``,
the evaluator's Beam steps, into the artifact's ``embeddings/`` folder: scratch, removed once
the gallery is written, since the index holds the vectors). Given the model's evaluation
(``spec.EVALUATION_KEY``) scored on the same rows and query sample, the eval split's
embeddings and its queries' nearest neighbours are read from it instead (``evaluated``); the
info file names the evaluation read, or why it was not. ``gallery`` builds the index and
the threshold and writes them; a gallery of at most ``signature_max_rows`` rows also gets the
model re-saved with the ``lookup`` signature (``signature``), verified on eval rows, in
``spec.SERVING_MODEL_DIR``: what the Pusher pushes. The artifact gets the index's kind, rows,
recall and the match threshold as custom properties (the threshold as -1 when no threshold
reaches the target precision). Given a blessing that is not blessed, it builds nothing (the
Pusher will push nothing): the info file says so and ``built`` is 0.
"""

from __future__ import annotations

import json
import os

from absl import logging
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_metric_learning.components.gallery_index import (
    catalogue,
    evaluated,
    gallery,
    lookup,
    signature,
    spec,
)
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator import embeddings
from tfx_metric_learning.core import records

KIND_PROPERTY = "index_kind"
ROWS_PROPERTY = "rows"
RECALL_PROPERTY = "recall_at_k"
THRESHOLD_PROPERTY = "match_threshold"
NO_THRESHOLD = -1.0
BUILT_PROPERTY = "built"
VERIFY_ROWS = 64  # eval rows the re-saved model is checked on against the original


def is_blessed(blessings: list) -> bool:
    """Whether the (optional, single) ModelBlessing says blessed; True without one."""
    return not blessings or blessings[0].get_int_custom_property("blessed") == 1


def catalogue_rows(path: str, model_dir: str, label_column: str, id_column: str):
    """``(gallery.Rows, catalogue.Table)`` of the checked catalogue at ``path``.

    Embedded in-process by the model's ``serving_default``, ``lookup.BATCH_ROWS`` at a time.
    """
    serve = lookup.load_serving(model_dir)
    table = catalogue.check_catalogue(
        catalogue.read_table(path, label_column=label_column, id_column=id_column),
        lookup.feature_names(serve),
    )
    return gallery.rows_of_catalogue(table, lookup.embed_columns(serve, table.features)), table


def first_records(pattern: str, count: int) -> list[bytes]:
    """At most ``count`` serialized examples of the files matching ``pattern``, in order."""
    out: list[bytes] = []
    for path in sorted(fileio.glob(pattern)):
        for record in records.iter_records(path):
            out.append(record)
            if len(out) == count:
                return out
    return out


def write_serving_model(built: gallery.Gallery, model_dir: str, out_dir: str, settings, check):
    """Re-saves the model with the ``lookup`` signature into ``out_dir``; the rows verified.

    Verified on the serialized examples ``check`` (``signature.verify_lookup_model``).
    """
    signature.write_lookup_model(
        model_dir,
        out_dir,
        built.vectors,
        built.ids,
        built.labels,
        built.calibration.threshold,
        settings.lookup_k,
    )
    return signature.verify_lookup_model(model_dir, out_dir, check, built.vectors)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Embeds the gallery, builds the index, calibrates the threshold, writes them."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        settings = GallerySettings.from_json(
            exec_properties[spec.SETTINGS_KEY], complete=True, source="GalleryIndex's settings"
        )
        label_column = exec_properties[spec.LABEL_COLUMN_KEY]
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(input_dict[spec.MODEL_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.GALLERY_INDEX_KEY])
        if not is_blessed(input_dict.get(spec.BLESSING_KEY) or []):
            fileio.makedirs(out.uri)
            with fileio.open(os.path.join(out.uri, spec.INFO_FILE), "w") as f:
                f.write(json.dumps({"built": False, "reason": "the model was not blessed"}))
            out.set_int_custom_property(BUILT_PROPERTY, 0)
            logging.info("the model was not blessed: no gallery index")
            return
        available = artifact_utils.decode_split_names(examples.split_names)
        if spec.CALIBRATION_SPLIT not in available:
            raise ValueError(
                f"the gallery needs the {spec.CALIBRATION_SPLIT!r} split to calibrate the match "
                f"threshold on; the examples have {sorted(available)}"
            )
        model_dir = path_utils.serving_model_path(model.uri)
        table = None
        if settings.gallery:  # refused before anything is embedded when it is wrong
            rows, table = catalogue_rows(
                settings.gallery, model_dir, label_column, settings.gallery_id_column
            )
        splits = (
            [spec.CALIBRATION_SPLIT]
            if table is not None
            else [s for s in spec.GALLERY_SPLITS if s in available]
        )
        patterns = {
            s: os.path.join(artifact_utils.get_split_uri([examples], s), "*") for s in splits
        }
        evaluation, not_read = evaluated.from_evaluation(
            input_dict.get(spec.EVALUATION_KEY) or [], model.uri, examples.uri, settings
        )
        if evaluation is None:
            logging.info("the eval split is embedded here: %s", not_read)
        for folder in (spec.EMBEDDINGS_DIR, spec.SERVING_MODEL_DIR):  # a retry starts afresh
            if fileio.exists(os.path.join(out.uri, folder)):
                fileio.rmtree(os.path.join(out.uri, folder))
        emb_dir = os.path.join(out.uri, spec.EMBEDDINGS_DIR)
        embedded = {
            s: p for s, p in patterns.items() if evaluation is None or s != spec.CALIBRATION_SPLIT
        }
        if embedded:
            with self._make_beam_pipeline() as p:
                embeddings.embed_splits(
                    p, embedded, {"model": model_dir}, label_column, emb_dir, seed=settings.seed
                )
        shards = {
            s: evaluation.shards
            if s not in embedded
            else embeddings.EmbeddingShards(emb_dir, "model", s)
            for s in splits
        }
        if table is None:
            rows = gallery.rows_of_splits(shards)
        built = gallery.build_gallery(rows, shards[spec.CALIBRATION_SPLIT], settings, evaluation)
        source = {
            "gallery": settings.gallery or "data",
            "eval_split_read_from": evaluation.uri if evaluation else None,
            "eval_split_not_read_because": not_read or None,
        }
        if table is not None:
            source |= {"ignored_columns": table.ignored, "skipped_rows": table.skipped}
        verified = 0
        if len(built.ids) <= settings.signature_max_rows:
            check = first_records(patterns[spec.CALIBRATION_SPLIT], VERIFY_ROWS)
            verified = write_serving_model(
                built, model_dir, os.path.join(out.uri, spec.SERVING_MODEL_DIR), settings, check
            )
        source[spec.LOOKUP_SIGNATURE] = bool(verified)
        gallery.write_gallery(built, out.uri, source)
        if fileio.exists(emb_dir):
            fileio.rmtree(emb_dir)  # scratch: the index holds the vectors (268 MB at 1M rows x 64)
        info, match = built.info, built.calibration
        out.set_int_custom_property(BUILT_PROPERTY, 1)
        out.set_string_custom_property(KIND_PROPERTY, info.kind)
        out.set_int_custom_property(ROWS_PROPERTY, info.rows)
        out.set_float_custom_property(RECALL_PROPERTY, info.recall_at_k)
        threshold = NO_THRESHOLD if match.threshold is None else match.threshold
        out.set_float_custom_property(THRESHOLD_PROPERTY, threshold)
        logging.info(
            "gallery of %d rows (%s), %s index (nlist %d, nprobe %d, recall@%d %.4f); match "
            "threshold %s: precision %s, recall %.4f on %d eval queries; lookup signature: %s",
            info.rows,
            ", ".join(f"{k} {v}" for k, v in built.describe()["rows_per_split"].items()),
            info.kind,
            info.nlist,
            info.nprobe,
            info.k,
            info.recall_at_k,
            "none" if match.threshold is None else f"{match.threshold:.4f}",
            match.precision,
            match.recall,
            match.queries,
            f"verified on {verified} rows" if verified else "none (gallery too large)",
        )
