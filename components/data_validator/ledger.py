"""The span ledger: each validated span's verdict, one small JSON file per span.

``<folder>/span-<number>.json`` holds the verdict of the newest validation of that span:
``{"span", "version", "accepted", "allowed", "anomalies", "statistics", "run"}`` where
``statistics`` is the URI of the span's statistics artifact (the baseline the next span's
drift is measured against) and ``anomalies`` lists ``{"feature", "anomaly", "description"}``.

The validator writes it (``record``); ExampleGen reads it to leave rejected spans out of its
window, and the validator to find the newest accepted span before the one it checks. It is a
folder of files rather than a query to ML Metadata because executors on Kubeflow have no
ML Metadata client, while every task can read the pipeline root. Each file is written to a
temporary name and renamed, so a reader never sees half a verdict; one file per span means
two runs never rewrite the same file unless they validate the same span.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tfx.dsl.io import fileio

PREFIX = "span-"


def _path(folder: str, span: int) -> str:
    return os.path.join(folder, f"{PREFIX}{span}.json")


def record(folder: str, verdict: dict[str, Any]) -> str:
    """Writes ``verdict`` (with ``span``) as the span's verdict; returns the file's path."""
    fileio.makedirs(folder)
    path = _path(folder, int(verdict["span"]))
    tmp = f"{path}.tmp-{os.getpid()}"
    with fileio.open(tmp, "w") as f:
        f.write(json.dumps(verdict, indent=2, sort_keys=True))
    fileio.rename(tmp, path, overwrite=True)
    return path


def verdicts(folder: str) -> dict[int, dict[str, Any]]:
    """``{span: verdict}`` of every span the ledger holds (empty when there is none)."""
    if not folder or not fileio.exists(folder):
        return {}
    out = {}
    for path in fileio.glob(os.path.join(folder, f"{PREFIX}*.json")):
        with fileio.open(path, "r") as f:
            verdict = json.loads(f.read())
        out[int(verdict["span"])] = verdict
    return out


def rejected(folder: str) -> dict[int, int | None]:
    """``{span: version}`` of the spans whose newest validation rejected them."""
    return {s: v.get("version") for s, v in verdicts(folder).items() if not v["accepted"]}


def latest_accepted_before(folder: str, span: int) -> dict[str, Any] | None:
    """The verdict of the newest accepted span older than ``span`` (None: no such span)."""
    older = [v for s, v in verdicts(folder).items() if s < span and v["accepted"]]
    return max(older, key=lambda v: v["span"]) if older else None
