"""The paths a command will read and write, checked before it runs (nothing is created).

A local command writes some paths only at its end, after minutes or hours of work: the
serving folder (the Pusher), ``--summary-json``, ``--markdown``, the schema ``metric-learning
schema`` writes. Each is checked in the first seconds instead, and every problem is named
with its flag (``problems``):

- every path's scheme is one TensorFlow (and so every TFX component) has a filesystem for
  (``tensorflow_reads``): ``foo://x`` is refused with the schemes there are;
- a file to write is not an existing folder, and a folder to write is not an existing file;
- the nearest existing ancestor of either is a folder (a path under a file cannot be
  created) and, on the local filesystem, writable by this user;
- a schema file to read parses as a ``tensorflow_metadata`` Schema in text format (the
  format ImportSchemaGen reads), its parse error named, and its features'
  ``max_missing_fraction`` tags are fractions; one that does not exist yet is one the run
  writes (the first run of a schedule infers it), so it is checked as an output.

Remote paths (``gs://``...) get the scheme check only: their permissions are the bucket's,
and its client reports them when it writes. Written by hand: no library checks a list of
output paths before a run.
"""

from __future__ import annotations

import os


def scheme(path: str) -> str:
    """``gs`` for ``gs://b/k``; ``""`` for a local path."""
    return path.split("://", 1)[0] if "://" in path else ""


def tensorflow_reads(uri: str) -> bool:
    """Whether TensorFlow (and so TFX's file I/O) has a filesystem for ``uri``'s scheme."""
    if not scheme(uri):
        return True
    import tensorflow as tf

    return scheme(uri) in tf.io.gfile.get_registered_schemes()


def _scheme_problem(flag: str, path: str) -> str | None:
    if tensorflow_reads(path):
        return None
    import tensorflow as tf

    known = ", ".join(f"{s}://" for s in sorted(tf.io.gfile.get_registered_schemes()))
    return (
        f"{flag} {path}: no filesystem for {scheme(path)}:// here (TensorFlow has: {known}; "
        f"or a local path)"
    )


def _ancestor_problem(flag: str, path: str) -> str | None:
    """Why nothing can be created at the local ``path`` (None: it can)."""
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        return f"{flag} {path}: {ancestor} is a file, so nothing can be created under it"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{flag} {path}: {ancestor} is not writable by this user"
    return None


def output_problem(flag: str, path: str, folder: bool) -> str | None:
    """Why the command could not write ``path`` (a folder when ``folder``); None: it can."""
    problem = _scheme_problem(flag, path)
    if problem or scheme(path):
        return problem
    if os.path.exists(path):
        if folder and not os.path.isdir(path):
            return f"{flag} {path} is a file; a folder is written there"
        if not folder and os.path.isdir(path):
            return f"{flag} {path} is a folder; a file is written there"
        if not os.access(path, os.W_OK):
            return f"{flag} {path} is not writable by this user"
        return None
    return _ancestor_problem(flag, path)


def schema_problem(flag: str, path: str) -> str | None:
    """Why ``path`` is not a readable text-format Schema (None: it is)."""
    problem = _scheme_problem(flag, path)
    if problem:
        return problem
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.dsl.io import fileio

    if not fileio.exists(path):  # the run writes it (a first run infers the schema)
        return output_problem(flag, path, folder=False)
    if fileio.isdir(path):
        return f"{flag} {path} is a folder, not a schema file"
    from tfx_metric_learning.components.data_validator.schema_curation import (
        max_missing_fraction,
    )

    schema = schema_pb2.Schema()
    try:
        with fileio.open(path, "rb") as f:
            text_format.Parse(f.read().decode("utf-8"), schema)
        for feature in schema.feature:
            max_missing_fraction(feature)
    except UnicodeDecodeError as e:
        return f"{flag} {path} is not text (byte {e.start} is not UTF-8): not a schema file"
    except text_format.ParseError as e:
        return f"{flag} {path} is not a valid schema (text-format Schema proto): {e}"
    except ValueError as e:  # a threshold of the curated schema's that cannot be read
        return f"{flag} {path}: {e}"
    return None


def problems(
    inputs: dict[str, str],
    output_files: dict[str, str],
    output_folders: dict[str, str],
    schema_inputs: dict[str, str],
) -> list[str]:
    """Every problem of the module docstring, one line each.

    Each argument maps flags to paths (``{"--serving-dir": path}``); an empty path is a flag
    not used.
    """
    found = [_scheme_problem(flag, path) for flag, path in inputs.items() if path]
    found += [output_problem(flag, path, False) for flag, path in output_files.items() if path]
    found += [output_problem(flag, path, True) for flag, path in output_folders.items() if path]
    found += [schema_problem(flag, path) for flag, path in schema_inputs.items() if path]
    return [p for p in found if p]
