"""Small labelled datasets for tests: as CSV, or as the ``Examples`` artifact ExampleGen writes.

- ``digits_csv``: rows of scikit-learn's handwritten digits (8x8 images, 64 pixel columns
  ``pixel_R_C`` and ``label``; 10 classes), a seeded random subset, so a subset holds every
  class in proportion;
- ``many_class_csv``: a synthetic many-class set: ``classes`` Gaussian clusters in
  ``features`` dimensions (centres drawn from ``N(0, 1)``, rows ``centre + N(0, spread^2)``),
  ``rows_per_class`` rows each, labels ``c000``, ``c001``, ...: enough classes for the
  unseen-class protocol to hold classes out of training;
- ``examples``: a CSV run through the pipeline's own ExampleGen executor (``run_executor``),
  so the artifact has the splits, the ingest report and the row checks of a pipeline run.

Every writer goes through ``tfx.dsl.io.fileio``: a path may be any URI TFX can write.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
from tfx import types

from tfx_metric_learning.pipeline.data import digits_csv_text, write_if_changed


def digits_csv(path: str, rows: int = 300, seed: int = 0) -> str:
    """Writes ``rows`` digits (a seeded random subset; all 1,797 if ``rows`` is larger)."""
    header, *lines = digits_csv_text().splitlines()
    order = np.random.default_rng(seed).permutation(len(lines))[:rows]
    write_if_changed(path, "\n".join([header, *(lines[i] for i in sorted(order))]) + "\n")
    return path


def many_class_csv(
    path: str,
    classes: int = 40,
    rows_per_class: int = 10,
    features: int = 16,
    spread: float = 0.35,
    seed: int = 0,
) -> str:
    """Writes the synthetic many-class set described in the module docstring."""
    if classes < 2 or rows_per_class < 2 or features < 1 or spread <= 0:
        raise ValueError(
            f"many_class_csv needs classes >= 2, rows_per_class >= 2, features >= 1 and "
            f"spread > 0; got {classes}, {rows_per_class}, {features}, {spread}"
        )
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features))
    labels = np.repeat(np.arange(classes), rows_per_class)
    values = centres[labels] + spread * rng.normal(size=(len(labels), features))
    order = rng.permutation(len(labels))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(f"f{j:03d}" for j in range(features)), "label"])
    for i in order:
        writer.writerow([f"{v:.6g}" for v in values[i]] + [f"c{labels[i]:03d}"])
    write_if_changed(path, out.getvalue())
    return path


def examples(csv_path: str, output_dir: str | None = None, **ingest: Any) -> types.Artifact:
    """``csv_path`` through the pipeline's ExampleGen executor; its ``Examples`` artifact.

    ``ingest``: ``IngestSettings`` fields (e.g. ``validation_fraction=0.1``, ``protocol``).
    The artifact's URI is ``<output_dir>/examples`` (a temp folder if not given); its splits
    are ``train``, ``eval`` and, with a validation fraction, ``valid``.
    """
    from tfx.types import standard_component_specs

    from tfx_metric_learning.components.example_gen.component import labelled_example_gen
    from tfx_metric_learning.components.example_gen.settings import IngestSettings
    from tfx_metric_learning.pipeline.data import split_input
    from tfx_metric_learning.testing.executors import run_executor

    folder, pattern = split_input(csv_path)
    component = labelled_example_gen(folder, pattern, IngestSettings(**ingest))
    outputs = run_executor(component, output_dir=output_dir)
    return outputs[standard_component_specs.EXAMPLES_KEY][0]
