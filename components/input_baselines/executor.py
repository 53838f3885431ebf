"""InputBaselines executor: reads its properties and calls ``baselines.measure``.

Writes ``spec.BASELINES_FILE`` holding ``{"baselines", "seconds"}`` (the ``"baselines"`` entry
as an evaluation writes it, so the evaluator's ``reused_baselines`` reads either); the
embedding shards it scored are scratch and removed (nothing reads them: a later run replays
the file from the cache). A retried execution starts from no shards.
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import logging
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from tfx_metric_learning.components.input_baselines import spec
from tfx_metric_learning.components.retrieval_evaluator import baselines as baselines_lib
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings


class Executor(base_beam_executor.BaseBeamExecutor):
    """Scores the raw and classic baselines of the examples once."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Embeds, fits and scores the input baselines; writes them."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        graph = artifact_utils.get_single_uri(input_dict[spec.TRANSFORM_GRAPH_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.BASELINES_KEY])
        settings = EvaluationSettings.from_json(
            exec_properties.get(spec.SETTINGS_KEY) or "",
            complete=True,
            source="InputBaselines' settings",
        )
        emb_dir = os.path.join(out.uri, spec.EMBEDDINGS_DIR)
        if fileio.exists(emb_dir):
            fileio.rmtree(emb_dir)
        baselines, seconds = baselines_lib.measure(
            self._make_beam_pipeline,
            examples,
            graph,
            exec_properties[spec.LABEL_COLUMN_KEY],
            settings,
            emb_dir,
        )
        fileio.rmtree(emb_dir)
        record = {"baselines": dataclasses.asdict(baselines), "seconds": seconds}
        io_utils.write_string_file(
            os.path.join(out.uri, spec.BASELINES_FILE), json.dumps(record, indent=2)
        )
        for name, entry in {**baselines.raw, **baselines.classic}.items():
            logging.info("retrieval metrics (%s): %s", name, json.dumps(entry["metrics"]))
