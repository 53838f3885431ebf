"""A local run's own state on a shared host: one run per pipeline at a time, its temp files.

- ``RunLock``: an exclusive ``fcntl.flock`` on ``<state dir>/run.lock`` (the folder of ML
  Metadata's SQLite file), held for the whole run. The kernel drops it when the process
  ends, killed or not, so a killed run never leaves a stale lock. A second run on the same
  pipeline waits up to ``wait_seconds`` and then refuses, naming the run that holds it (pid,
  host, start time, command, written into the lock file).
- ``run_temp_dir``: the run's temporary folder, ``<state dir>/tmp/<run id>``, set as the
  process's temp dir (``TMPDIR`` and ``tempfile.tempdir``, inherited by Beam's worker
  processes) for the run and deleted after it, failed or not. What TFX, Beam and TensorFlow
  put in the temp folder (TFX's ``tfx_ephemeral`` package builds, about 48 MB per Beam
  component, autograph files) is gone when the run ends; folders of killed runs are deleted
  by the next run, which holds the lock and so knows that no other run uses them.

Written by hand: no dependency of the stack offers an inter-process lock (``filelock`` is
not installed), and the temp folder must follow the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import time

LOCK_FILE = "run.lock"
TEMP_DIR = "tmp"
_TEMP_VARS = ("TMPDIR", "TEMP", "TMP")


class RunRefused(ValueError):
    """The run cannot start (another run holds the pipeline, a folder cannot be written)."""


class RunLock:
    """An exclusive lock on one pipeline's local state; see the module docstring."""

    def __init__(self, state_dir: str, wait_seconds: float = 0.0, poll_seconds: float = 0.5):
        self.path = os.path.join(state_dir, LOCK_FILE)
        self._wait = wait_seconds
        self._poll = poll_seconds
        self._file = None

    def _holder(self) -> str:
        try:
            with open(self.path) as f:
                info = json.loads(f.read() or "{}")
        except (OSError, ValueError):
            info = {}
        if not info:
            return "another run"
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
        return (
            f"run {info.get('run_id', '?')} (pid {info.get('pid')} on {info.get('host')}, "
            f"started {started}: {info.get('command', '')})"
        )

    def acquire(self, run_id: str) -> None:
        """Takes the lock, waiting up to ``wait_seconds``; ``RunRefused`` when it cannot."""
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + self._wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise RunRefused(
                        f"{self._holder()} is running this pipeline (lock {self.path}); runs of "
                        f"one pipeline must not overlap (each would be compared with a stale "
                        f"baseline): wait for it, or pass --wait-for-lock SECONDS"
                    ) from None
                time.sleep(self._poll)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "run_id": run_id,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": time.time(),
                    "command": " ".join(sys.argv),
                }
            )
        )
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Empties the holder record and releases the lock."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@contextlib.contextmanager
def run_temp_dir(state_dir: str, run_id: str):
    """The run's temp folder (see the module docstring); removes stale ones first.

    Call only while holding the ``RunLock``: the folders of other runs it finds are those of
    killed runs.
    """
    root = os.path.join(state_dir, TEMP_DIR)
    if os.path.isdir(root):
        for name in os.listdir(root):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    path = os.path.join(root, run_id.replace(":", "-"))
    os.makedirs(path, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in _TEMP_VARS}
    saved_dir = tempfile.tempdir
    for key in _TEMP_VARS:
        os.environ[key] = path
    tempfile.tempdir = path
    try:
        yield path
    finally:
        tempfile.tempdir = saved_dir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(path, ignore_errors=True)


def check_writable(folder: str, what: str) -> None:
    """Creates ``folder`` and writes a probe file in it; ``RunRefused`` naming it otherwise."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as e:
        raise RunRefused(f"cannot write the {what} {folder}: {e.strerror or e}") from None
