"""What is in production: every key, channel and file name of the production record.

Shared by the Pusher (which writes the record), the ``ProductionModel`` component (which
reads it at the start of every run), the evaluator and the Trainer (which take its output as
their baseline and warm start), the run report and the tests.

The record lives at the serving location, beside the pushed versions TF Serving loads
(``<serving dir>/<version>/saved_model.pb``); TF Serving takes only numeric folders as
versions, so the record's file and history folder are invisible to it.
"""

# --- at the serving location ----------------------------------------------------------------
SAVED_MODEL = "saved_model.pb"  # a version folder is complete (loadable) once it holds this
RECORD_FILE = "production.json"  # the production record: one JSON object (``record.py``)
HISTORY_DIR = "production_history"  # every record ever written, ``<version>.json``
RECORD_FORMAT = 1  # the record's ``format``; a reader refuses any other

# --- the ProductionModel component -----------------------------------------------------------
SERVING_DIR_KEY = "serving_dir"  # execution property: the serving location to read
MODEL_KEY = "model"  # output channel: a Model artifact, the production SavedModel copied in
# what the ProductionModel found, in its output artifact: this file (``status``, ``reason``,
# ``record``) and these custom properties
FOUND_FILE = "production.json"
STATUS_PROPERTY = "production_status"
VERSION_PROPERTY = "production_version"
FOUND, NONE, UNUSABLE = "found", "none", "unusable"  # the statuses
# execution property on Kubeflow: the digest of the record the run's plan found
# (``record.Production.digest``, handed on by ``kubeflow/run_plan.py``); the task's cache key
PLANNED_DIGEST_KEY = "production_fingerprint"

# --- the run that writes a record ------------------------------------------------------------
# execution property of the Pusher on Kubeflow: the pipeline job's name, compiled as the
# ``{{$.pipeline_job_name}}`` placeholder both backends resolve (kubeflow/runner.py)
PIPELINE_RUN_KEY = "pipeline_run"
