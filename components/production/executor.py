"""ProductionModel executor: reads the production record, hands its model to the run.

It calls ``find_production`` (a plain function, tested without an orchestrator): the record
at the serving location is read (``record.read``); when it names a usable version, that
SavedModel is copied into the output ``Model`` artifact (``<uri>/Format-Serving``, where TFX's
``path_utils.serving_model_path`` finds a model), so the evaluator and the Trainer read a
copy that no later push can change under them. Without a usable record the artifact holds no
model, the evaluator then has no baseline and the Trainer starts cold, and the reason is
logged as a warning and kept. Either way the artifact holds ``production.json`` (status,
reason, record, digest) and the custom properties ``production_status`` and
``production_version``.

On Kubeflow the task is cached on the digest of the record the run's plan found
(``spec.PLANNED_DIGEST_KEY``, ``kubeflow/run_plan.py``); a record that changed between the plan
and this read (a push in between) fails the task, naming both, so no cache entry ever holds a
production model other than the one its key names.
"""

from __future__ import annotations

import os

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from tfx_metric_learning.components.production import record as record_lib
from tfx_metric_learning.components.production import spec


def has_model(model_uri: str) -> bool:
    """Whether a ``Model`` artifact at ``model_uri`` holds a SavedModel (production's may not)."""
    serving = path_utils.serving_model_path(model_uri)
    return fileio.exists(os.path.join(serving, spec.SAVED_MODEL))


class ProductionChanged(RuntimeError):
    """The production record is not the one the run was planned with."""


def find_production(
    serving_dir: str, output_uri: str, planned_digest: str | None = None
) -> record_lib.Production:
    """Reads the record at ``serving_dir`` into the Model artifact folder ``output_uri``.

    ``planned_digest``: the digest the run's plan found; another one raises
    ``ProductionChanged`` before anything is written.
    """
    production = record_lib.read(serving_dir)
    if planned_digest and production.digest != planned_digest:
        raise ProductionChanged(
            f"the production record at {serving_dir} changed since this run was planned "
            f"(digest {planned_digest[:12]}, now {production.digest[:12]}): a model was pushed "
            f"in between; run the pipeline again"
        )
    target = path_utils.serving_model_dir(output_uri)
    if fileio.exists(target):  # a retried execution starts from an empty artifact
        fileio.rmtree(target)
    if production.found:
        io_utils.copy_dir(production.record["model_uri"], target)
        logging.info("production: %s", production.reason)
    else:
        logging.warning("no baseline and no warm start in this run: %s", production.reason)
    io_utils.write_string_file(os.path.join(output_uri, spec.FOUND_FILE), production.to_json())
    return production


class Executor(base_executor.BaseExecutor):
    """Writes what is in production into the ``model`` output."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model = artifact_utils.get_single_instance(output_dict[spec.MODEL_KEY])
        production = find_production(
            exec_properties[spec.SERVING_DIR_KEY],
            model.uri,
            exec_properties.get(spec.PLANNED_DIGEST_KEY),
        )
        model.set_string_custom_property(spec.STATUS_PROPERTY, production.status)
        version = (production.record or {}).get("version") if production.found else ""
        model.set_string_custom_property(spec.VERSION_PROPERTY, str(version or ""))
