"""GalleryIndex executor: embed the gallery with the model (Beam), then index and calibrate.

Reads its properties, has the model embed the gallery splits of the examples
(``retrieval_evaluator.embeddings.embed_splits``, the evaluator's Beam steps, into the
artifact's ``embeddings/`` folder), and hands the shards to ``gallery.build_gallery`` and
``gallery.write_gallery``. The artifact gets the index's kind, rows, recall and the match
threshold as custom properties (the threshold as -1 when no threshold reaches the target
precision). Given a blessing that is not blessed, it builds nothing (the Pusher will push
nothing): the info file says so and ``built`` is 0.
"""

from __future__ import annotations

import json
import os

from absl import logging
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_metric_learning.components.gallery_index import gallery, spec
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator import embeddings

KIND_PROPERTY = "index_kind"
ROWS_PROPERTY = "rows"
RECALL_PROPERTY = "recall_at_k"
THRESHOLD_PROPERTY = "match_threshold"
NO_THRESHOLD = -1.0
BUILT_PROPERTY = "built"


def is_blessed(blessings: list) -> bool:
    """Whether the (optional, single) ModelBlessing says blessed; True without one."""
    return not blessings or blessings[0].get_int_custom_property("blessed") == 1


class Executor(base_beam_executor.BaseBeamExecutor):
    """Embeds the gallery splits, builds the index, calibrates the threshold, writes them."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        settings = GallerySettings.from_json(
            exec_properties[spec.SETTINGS_KEY], complete=True, source="GalleryIndex's settings"
        )
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
        splits = [s for s in spec.GALLERY_SPLITS if s in available]
        patterns = {
            s: os.path.join(artifact_utils.get_split_uri([examples], s), "*") for s in splits
        }
        emb_dir = os.path.join(out.uri, spec.EMBEDDINGS_DIR)
        if fileio.exists(emb_dir):  # a retried execution starts from no shards
            fileio.rmtree(emb_dir)
        with self._make_beam_pipeline() as p:
            embeddings.embed_splits(
                p,
                patterns,
                {"model": path_utils.serving_model_path(model.uri)},
                exec_properties[spec.LABEL_COLUMN_KEY],
                emb_dir,
                seed=settings.seed,
            )
        shards = {s: embeddings.EmbeddingShards(emb_dir, "model", s) for s in splits}
        built = gallery.build_gallery(shards, settings)
        gallery.write_gallery(built, out.uri)
        info, match = built.info, built.calibration
        out.set_int_custom_property(BUILT_PROPERTY, 1)
        out.set_string_custom_property(KIND_PROPERTY, info.kind)
        out.set_int_custom_property(ROWS_PROPERTY, info.rows)
        out.set_float_custom_property(RECALL_PROPERTY, info.recall_at_k)
        threshold = NO_THRESHOLD if match.threshold is None else match.threshold
        out.set_float_custom_property(THRESHOLD_PROPERTY, threshold)
        logging.info(
            "gallery of %d rows (%s), %s index (nlist %d, nprobe %d, recall@%d %.4f); match "
            "threshold %s: precision %s, recall %.4f on %d eval queries",
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
        )
