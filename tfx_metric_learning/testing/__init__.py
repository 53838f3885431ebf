"""The testing kit: test a preprocessing_fn, a loss or a component the way this project does.

Installed with the package. Its pytest plugin (``tfx_metric_learning.testing.plugin``,
registered in the ``pytest11`` entry-point group) provides fixtures without an import; the
checks and helpers below are plain functions, usable from any test runner:

- data (``datasets``): ``digits_csv``, ``many_class_csv``, ``examples`` (a CSV through the
  pipeline's ExampleGen executor into an ``Examples`` artifact with splits);
- ``run_executor`` (``executors``): one component's executor on real artifacts, checked
  against its spec;
- ``sqlite_store`` (``metadata``): a real ML Metadata store in a SQLite file;
- ``fast_config``, ``run_pipeline`` (``pipelines``): the whole pipeline, small and quick;
- ``check_loss``, ``compare_to_reference`` (``losses``): the contract of every built-in loss;
- ``check_preprocessing_fn`` (``preprocessing``): through TFT on tiny data, the
  output contract, the raw-feature serving path and training/serving skew;
- ``check_writes_through_fileio`` (``filesystems``): an executor run once on a non-local
  (``ram://``) file system, nothing written to local disk;
- ``check_compiled_spec`` (``compiled``): the open-source Kubeflow and Vertex AI rules on a
  compiled pipeline.

``docs/testing.md`` shows each at work; ``examples/extending/`` is a project tested only
through this kit. Names are imported on first use, so importing the kit loads no TensorFlow.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "digits_csv": "datasets",
    "many_class_csv": "datasets",
    "examples": "datasets",
    "run_executor": "executors",
    "ExecutorRunError": "executors",
    "split_uris": "executors",
    "sqlite_store": "metadata",
    "fast_config": "pipelines",
    "run_pipeline": "pipelines",
    "check_loss": "losses",
    "compare_to_reference": "losses",
    "LossContractError": "losses",
    "check_preprocessing_fn": "preprocessing",
    "PreprocessingContractError": "preprocessing",
    "check_writes_through_fileio": "filesystems",
    "check_compiled_spec": "compiled",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """Imports ``name`` from its module on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
