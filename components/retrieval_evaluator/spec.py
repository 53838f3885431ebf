"""The RetrievalEvaluator's contract: its keys, channels and output file names.

Imported by the component, the executor, the Pusher (which records what a pushed model was
blessed with), the run report and the tests.
"""

# execution properties
LABEL_COLUMN_KEY = "label_column"
SETTINGS_KEY = "settings"  # EvaluationSettings as JSON (every setting)

# channels
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
# the production model (components/production): a Model artifact that may hold no model
BASELINE_MODEL_KEY = "baseline_model"
# another evaluation on the same examples whose input baselines (raw, classic) are reused
BASELINES_KEY = "baselines"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"

# in the ModelEvaluation
METRICS_FILE = "metrics.json"  # the candidate's metrics
EVALUATION_FILE = "evaluation.json"  # the decision and every number behind it
REPORT_DIR = "report"
REPORT_FILE = "report.html"  # in REPORT_DIR (and the Leaderboard's, the GalleryIndex's)
EMBEDDINGS_DIR = "embeddings"  # the embedding shards scored, kept: ``<source>-<split>-*``
CANDIDATE = "candidate"  # the source name of the candidate model's shards
# the candidate's queries, in query order: their row ``keys``, the ``similarity`` of each
# one's first neighbour and whether it is ``correct`` (has its label), as ``.npz``: what the
# GalleryIndex calibrates its match threshold on when it was scored on the same rows
NEAREST_FILE = "nearest.npz"

# in the ModelBlessing, beside TFX's BLESSED / NOT_BLESSED file: ``{"blessed",
# "comparison_metric", "metrics", "scored_on"}``, what the Pusher writes into the production
# record (``scored_on``: ``scoring.scores_key``, what the metrics were measured on)
BLESSING_METRICS_FILE = "blessed_with.json"
