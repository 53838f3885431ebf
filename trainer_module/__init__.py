"""Code that runs inside Transform and Trainer: preprocessing, distances, losses, model, run_fn."""

import os

# TFT 1.16 and TFMA expect Keras 2 (tf_keras); must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
