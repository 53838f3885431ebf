"""The Trainer's contract with the rest of the pipeline: what ``run_fn`` writes beside the model.

Imported by ``run.py`` (which writes it), the Leaderboard and the run report (which read it)
and the tests, so none of them imports the training module for a file name.
"""

# in the Trainer's ``model_run`` artifact: the run's summary (settings, epochs kept, timing)
SUMMARY_FILE = "training_summary.json"
MODEL_RUN_KEY = "model_run"  # TFX's Trainer output channel the summary is written to
