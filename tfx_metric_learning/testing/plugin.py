"""The kit's pytest fixtures, registered through the ``pytest11`` entry point (no import needed).

| fixture | scope | what it is |
|---|---|---|
| ``digits_csv_file`` | session | path of 300 digits rows as CSV (``datasets.digits_csv``) |
| ``many_class_csv_file`` | session | path of a 40-class synthetic CSV (``many_class_csv``) |
| ``digits_examples`` | session | the digits CSV as an ``Examples`` artifact (train/eval) |
| ``mlmd_store`` | function | a fresh real ML Metadata store in a SQLite file |
| ``ram_root`` | function | a fresh ``ram://`` folder, reachable by TensorFlow, TFX and Beam |
| ``fast_pipeline_config`` | session | ``pipelines.fast_config`` in a session temp folder |
| ``fast_pipeline_run`` | session | the run summary of ``fast_pipeline_config`` |

Override ``fast_pipeline_config`` in a ``conftest.py`` (same name, session scope) to run the
pipeline with a loss or a ``preprocessing_fn`` of your own. This module imports neither
TensorFlow nor TFX: each fixture imports what it needs when it is first used, so the
plugin costs nothing to test runs that do not use it.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def digits_csv_file(tmp_path_factory) -> str:
    """300 digits rows as CSV (``datasets.digits_csv``); its path."""
    from tfx_metric_learning.testing import datasets

    return datasets.digits_csv(str(tmp_path_factory.mktemp("kit-data") / "digits.csv"))


@pytest.fixture(scope="session")
def many_class_csv_file(tmp_path_factory) -> str:
    """A 40-class synthetic CSV (``datasets.many_class_csv``); its path."""
    from tfx_metric_learning.testing import datasets

    return datasets.many_class_csv(str(tmp_path_factory.mktemp("kit-data") / "classes.csv"))


@pytest.fixture(scope="session")
def digits_examples(tmp_path_factory, digits_csv_file):
    """The digits CSV through the pipeline's ExampleGen: an ``Examples`` artifact."""
    from tfx_metric_learning.testing import datasets

    return datasets.examples(digits_csv_file, str(tmp_path_factory.mktemp("kit-examples")))


@pytest.fixture
def mlmd_store(tmp_path):
    """A fresh, real ML Metadata store in a SQLite file."""
    from tfx_metric_learning.testing.metadata import sqlite_store

    return sqlite_store(str(tmp_path / "metadata.sqlite"))


@pytest.fixture
def ram_root():
    """A fresh ``ram://`` folder, reachable by TensorFlow, TFX and Beam."""
    from tfx_metric_learning.testing import filesystems

    return filesystems.fresh_ram_root(f"kit-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def fast_pipeline_config(tmp_path_factory):
    """``pipelines.fast_config`` in a session temp folder (override it to change it)."""
    from tfx_metric_learning.testing.pipelines import fast_config

    return fast_config(str(tmp_path_factory.mktemp("kit-pipeline")))


@pytest.fixture(scope="session")
def fast_pipeline_run(fast_pipeline_config) -> dict:
    """The run summary of ``fast_pipeline_config``, run once per session."""
    from tfx_metric_learning.testing.pipelines import run_pipeline

    return run_pipeline(fast_pipeline_config)
