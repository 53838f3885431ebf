"""The production record: which pushed version is in production, and what it was blessed with.

The Pusher writes it at the serving location after a version is complete
(``<serving dir>/production.json``); the ``ProductionModel`` component reads it at the start
of every run and hands the evaluator its baseline and the Trainer its warm start. It replaces
ML Metadata queries (TFX's ``LatestBlessedModelStrategy`` resolver), which the open-source
Kubeflow Pipelines backend cannot run: the record is one file every task of every backend can
read, and two pipelines share a baseline exactly when they share a serving location.

A record is a JSON object::

    {"format": 1, "version": "1733400000", "model_uri": "<serving dir>/1733400000",
     "source_model_uri": "<the Trainer's model artifact>", "comparison_metric": "map_at_r",
     "metrics": {"map_at_r": 0.91, ...}, "scored_on": {"examples": "<uri>", "seed": 42, ...},
     "pushed_at": "2026-12-05T03:00:12Z",
     "pipeline": "metric-learning", "run": "<run id>", "previous_version": "1733300000",
     "gallery": {"uri": "<serving dir>/1733400000/assets.extra/gallery", "rows": 1797,
                 "kind": "flat", "match_threshold": 0.87}}

Writing (``write``) is safe against kills and readers: the record goes first to
``production_history/<version>.json``, then to a temporary name beside ``production.json``,
renamed over it (one atomic rename on local and POSIX filesystems; on object stores a
rename is a copy of one object, and an object is never seen half-written). A reader sees the
old record or the new one, never a mix, and a killed write leaves the old record in place.

Reading (``read``) never raises on bad content: no record is status ``none`` (the first run),
and a record that cannot be used (not JSON, another format, missing fields, or a version
folder without ``saved_model.pb``) is status ``unusable`` with the reason; either way the run
has no baseline and says so. Every reading carries the ``digest`` of the bytes it read
(``NO_RECORD`` without a file): a compiled pipeline's cache keys the ``ProductionModel`` task
on it (``kubeflow/run_plan.py``). Written by hand: no library keeps a serving location's
record.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from typing import Any

from tfx.dsl.io import fileio

from tfx_metric_learning.components.production import spec

REQUIRED = ("format", "version", "model_uri")
NO_RECORD = "none"  # the digest of a serving location without a record


@dataclasses.dataclass(frozen=True)
class Production:
    """What a serving location holds: ``status`` (``spec.FOUND``/``NONE``/``UNUSABLE``)."""

    status: str
    reason: str
    record: dict[str, Any] | None = None
    digest: str = NO_RECORD  # sha256 of the record file's bytes as read

    @property
    def found(self) -> bool:
        return self.status == spec.FOUND

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def record_path(serving_dir: str) -> str:
    """Where the production record of ``serving_dir`` is."""
    return os.path.join(serving_dir, spec.RECORD_FILE)


def make_record(
    version: str,
    model_uri: str,
    *,
    source_model_uri: str = "",
    metrics: dict[str, float] | None = None,
    comparison_metric: str = "",
    pipeline: str = "",
    run: str = "",
    previous_version: str | None = None,
    gallery: dict[str, Any] | None = None,
    scored_on: dict[str, Any] | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """A record of ``version`` (pushed to ``model_uri``) as ``write`` stores it.

    ``scored_on``: what ``metrics`` were measured on (the evaluator's ``scores_key``); an
    evaluation on the same examples and settings reuses them as the production model's.

    ``gallery``: the gallery index pushed in the same version (``{"uri", "rows", "kind",
    "match_threshold"}``), or None when the version holds none.
    """
    pushed_at = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "format": spec.RECORD_FORMAT,
        "version": str(version),
        "model_uri": model_uri,
        "source_model_uri": source_model_uri,
        "comparison_metric": comparison_metric,
        "metrics": dict(metrics or {}),
        "scored_on": scored_on,
        "pushed_at": pushed_at,
        "pipeline": pipeline,
        "run": run,
        "previous_version": previous_version,
        "gallery": gallery,
    }


def _write_json(path: str, data: dict[str, Any]) -> None:
    """``data`` to ``path`` through a temporary name and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with fileio.open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True))
    fileio.rename(tmp, path, overwrite=True)


def write(serving_dir: str, record: dict[str, Any]) -> str:
    """Makes ``record`` the serving location's production record; returns its path.

    The history copy is written first, so every record that was ever production stays
    readable after the next one replaces it.
    """
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"a production record needs {missing}")
    history = os.path.join(serving_dir, spec.HISTORY_DIR)
    fileio.makedirs(history)
    _write_json(os.path.join(history, f"{record['version']}.json"), record)
    path = record_path(serving_dir)
    _write_json(path, record)
    return path


def read(serving_dir: str) -> Production:
    """What is in production at ``serving_dir``; never raises on what the files hold."""
    path = record_path(serving_dir)
    if not serving_dir or not fileio.exists(path):
        return Production(spec.NONE, f"no production record at {path}: nothing is in production")
    with fileio.open(path, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        reason = f"the production record {path} is not JSON ({e})"
        return Production(spec.UNUSABLE, reason, digest=digest)
    problem = check(record)
    if problem:
        return Production(spec.UNUSABLE, f"the production record {path} {problem}", record, digest)
    model = record["model_uri"]
    if not fileio.exists(os.path.join(model, spec.SAVED_MODEL)):
        return Production(
            spec.UNUSABLE,
            f"the production record {path} names version {record['version']} at {model}, "
            f"which holds no {spec.SAVED_MODEL}",
            record,
            digest,
        )
    return Production(
        spec.FOUND,
        f"version {record['version']} ({model}), pushed {record.get('pushed_at')}",
        record,
        digest,
    )


def check(record: Any) -> str:
    """What is wrong with ``record`` as a production record ('' when nothing)."""
    if not isinstance(record, dict):
        return f"holds a {type(record).__name__}, not an object"
    missing = [k for k in REQUIRED if not record.get(k)]
    if missing:
        return f"lacks {', '.join(missing)}"
    if record["format"] != spec.RECORD_FORMAT:
        return f"has format {record['format']!r}; this version reads format {spec.RECORD_FORMAT}"
    return ""


def history(serving_dir: str) -> list[dict[str, Any]]:
    """Every record written at ``serving_dir``, oldest version first (unreadable ones skipped)."""
    folder = os.path.join(serving_dir, spec.HISTORY_DIR)
    if not fileio.exists(folder):
        return []
    out = []
    for path in fileio.glob(os.path.join(folder, "*.json")):
        try:
            with fileio.open(path, "r") as f:
                out.append(json.loads(f.read()))
        except (ValueError, UnicodeDecodeError):
            continue
    return sorted(out, key=lambda r: (len(str(r.get("version"))), str(r.get("version"))))
