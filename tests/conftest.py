"""Test set-up: Keras 2 for TFT/TFMA, quiet TensorFlow, shared fixtures."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning, module="google")

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
