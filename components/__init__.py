"""Custom TFX components: example ingestion, pair/triplet construction, retrieval evaluation."""

import os

# TFT 1.16 and TFMA expect Keras 2 (tf_keras); must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
