"""Input data: the bundled default (scikit-learn's digits) and the files a user names.

Paths may be local or URIs (``gs://...``): every read and write goes through
``tfx.dsl.io.fileio``.
"""

from __future__ import annotations

import csv
import io
import os

from tfx.dsl.io import fileio

from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.example_gen import files, spans
from tfx_metric_learning.components.example_gen.settings import IngestSettings

DIGITS_FILE = "digits.csv"


def digits_csv_text(limit: int | None = None) -> str:
    """scikit-learn's handwritten digits (1,797 8x8 images) as CSV: 64 pixels + ``label``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*digits.feature_names, "label"])
    n = len(digits.target) if limit is None else min(limit, len(digits.target))
    for i in range(n):
        writer.writerow([f"{v:g}" for v in digits.data[i]] + [int(digits.target[i])])
    return out.getvalue()


def write_if_changed(path: str, text: str) -> bool:
    """Writes ``text`` to ``path`` unless it already holds exactly that; True if written.

    Keeping the file untouched keeps its modification time, so ExampleGen's input fingerprint
    is unchanged and a re-run reuses cached executions.
    """
    data = text.encode("utf-8")
    if fileio.exists(path):
        with fileio.open(path, "rb") as f:
            if f.read() == data:
                return False
    fileio.makedirs(os.path.dirname(path))
    tmp = f"{path}.tmp"
    with fileio.open(tmp, "wb") as f:
        f.write(data)
    fileio.rename(tmp, path, overwrite=True)
    return True


def prepare_default_data(data_dir: str, limit: int | None = None) -> str:
    """Writes the digits CSV into ``data_dir/digits/`` (if not already there); returns its path."""
    path = os.path.join(data_dir, "digits", DIGITS_FILE)
    write_if_changed(path, digits_csv_text(limit))
    return path


def split_input(data: str) -> tuple[str, str]:
    """``(input_base, pattern)`` for ExampleGen from a file or a folder path (or URI).

    A URI is taken as a file when it has a data file's suffix, else as a folder (no request
    to its storage: compiling for a bucket must not need credentials).
    """
    is_file = data.lower().endswith((*files.CSV_SUFFIXES, *files.TFRECORD_SUFFIXES, ".gz"))
    if os.path.isdir(data) or ("://" in data and not is_file):
        return data.rstrip("/"), "*"
    return os.path.dirname(data), os.path.basename(data)


def input_paths(data: str, ingest: IngestSettings | None = None) -> list[str]:
    """The data files a run reads, sorted: those ``data`` (a file or a folder) names.

    With ``ingest.data_pattern``: the files it matches under the folder ``data``; with span
    specs in it, the files of the window ExampleGen will read (the newest ``ingest.window``
    spans, leaving out those the span ledger holds as rejected).
    """
    base, pattern = split_input(data)
    if ingest is not None and ingest.uses_spans:
        found = spans.find_spans(base, ingest.data_pattern)
        if not found:
            raise FileNotFoundError(f"no span matches {os.path.join(base, ingest.data_pattern)}")
        chosen, _ = spans.window(
            found, max(found), ingest.window, ledger.rejected(ingest.verdicts_dir)
        )
        return [p for span in chosen for p in spans.span_paths(base, span)]
    if ingest is not None and ingest.data_pattern:
        pattern = ingest.data_pattern
    paths = sorted(p for p in fileio.glob(os.path.join(base, pattern)) if not fileio.isdir(p))
    if not paths:
        raise FileNotFoundError(f"no input files match {os.path.join(base, pattern)}")
    return paths
