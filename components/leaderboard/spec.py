"""The Leaderboard's contract: its keys, channels, output file names and properties.

Imported by the component, the executor, the compare pipeline, the run report and the tests.
"""

BRANCHES_KEY = "branches"
METRICS_KEY = "metrics"
MODEL_KEY = "model"
MODEL_RUN_KEY = "model_run"
EVALUATION_KEY = "evaluation"
LEADERBOARD_KEY = "leaderboard"
LEADERBOARD_FILE = "leaderboard.json"
# custom properties of the output model: which branch it is
CANDIDATE_PROPERTY = "candidate"
SEED_PROPERTY = "seed"
