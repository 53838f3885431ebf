"""The GalleryIndex component's contract: its keys, channels, artifact type and file names.

Imported by the component, the executor, the Pusher (which pushes the index with the model),
the run report and the tests.
"""

import os

from tfx.types.artifact import Artifact

# execution properties
LABEL_COLUMN_KEY = "label_column"
SETTINGS_KEY = "settings"  # GallerySettings as JSON (every setting)

# channels
EXAMPLES_KEY = "examples"  # the run's raw examples: their labelled rows are the gallery
MODEL_KEY = "model"  # the model whose embeddings are indexed
BLESSING_KEY = "model_blessing"  # optional: a model not blessed gets no index (none is pushed)
# optional: the model's evaluation, whose eval-split embeddings and nearest neighbours are
# read instead of computed when they were scored on the same rows (``evaluated.py``)
EVALUATION_KEY = "evaluation"
GALLERY_INDEX_KEY = "gallery_index"

# the splits of the examples that make the gallery (ExampleGen's ``new_span`` repeats rows)
GALLERY_SPLITS = ("train", "eval", "valid")
CALIBRATION_SPLIT = "eval"  # the split the match threshold is calibrated on
CATALOGUE_SPLIT = "catalogue"  # the split the rows file names for a catalogue's rows

# in the GalleryIndex artifact
INDEX_FILE = "gallery.faiss"  # faiss's serialised index (``index.write``)
ROWS_FILE = "gallery_rows.parquet"  # per indexed row, in index order: id, label, split
INFO_FILE = "gallery_index.json"  # the index's parameters, recall and the calibration
CURVE_FILE = "match_threshold.png"  # precision/recall over thresholds, the chosen one marked
EMBEDDINGS_DIR = "embeddings"  # the gallery's embedding shards: scratch, removed after
REPORT_DIR = "report"  # report.html: the index, the threshold's rates and the curve

# in a pushed version folder (the Pusher's): TF Serving ignores assets.extra
PUSHED_SUBDIR = os.path.join("assets.extra", "gallery")
PUSHED_FILES = (INDEX_FILE, ROWS_FILE, INFO_FILE, CURVE_FILE)  # what the Pusher copies


class GalleryIndex(Artifact):
    """A faiss index of a model's gallery embeddings, its rows and its match threshold."""

    # KFP v2 needs "<namespace>.<Title>", and TFX's container imports a custom type by that
    # title as a class path: the top-level package exposes this class (its __getattr__)
    TYPE_NAME = "tfx_metric_learning.GalleryIndex"


# the pushed SavedModel's ``lookup`` signature (``signature.py``), for galleries of at most
# ``signature_max_rows`` rows: the Trainer's model re-saved with it, in the artifact's
# SERVING_MODEL_DIR, is what the Pusher pushes
SERVING_MODEL_DIR = "serving_model"
LOOKUP_SIGNATURE = "lookup"
LOOKUP_EMBEDDING = "embedding"  # [N, D] float32
LOOKUP_IDS = "ids"  # [N, k] string
LOOKUP_LABELS = "labels"  # [N, k] string
LOOKUP_SIMILARITIES = "similarities"  # [N, k] float32, best first
LOOKUP_MATCH = "match"  # [N] bool
