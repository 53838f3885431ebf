"""The pipeline definition, its config, the local runner and the CLI."""

import os

# TFT 1.16 and TFMA expect Keras 2 (tf_keras); must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
