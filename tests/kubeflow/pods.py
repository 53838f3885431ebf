"""How the stand-in backend starts a task's container command: the pod's process.

On a cluster every task is a new container whose interpreter imports TFX's runner before it
does anything (about 10 s of one core here, of a task's 12-15 s; a scheduled scenario runs
some 50 tasks per backend). Two ways to run the compiled ``command + args``:

- ``FRESH``: a new interpreter per task (``subprocess``), exactly what a pod runs;
- ``FORKED``: for ``python -m <module>`` commands, a child forked from a server process that
  has imported ``PRELOAD`` once: multiprocessing's ``forkserver`` start method with
  ``set_forkserver_preload``, the standard library's own preload-then-fork server. The child
  takes the task's environment, ``sys.argv`` and output files, then runs ``<module>`` as
  ``__main__`` (``runpy.run_module``, what ``python -m`` does). Only the imports are shared:
  nothing runs in the server beyond importing, so no TensorFlow runtime, Beam pipeline or
  absl flags exist before the fork. Its exit code is the task's (``sys.exit`` in absl's
  ``app.run`` included); the functions registered with ``atexit`` run before it ends, as at
an interpreter's exit. What the server's imports read from the environment once (the
TensorFlow C++ log level) is the calling process's; the temporary folder is the task's. Any
other command runs ``FRESH``.

Both capture the task's stdout and stderr in one file; a failure reports the end of it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile

FRESH, FORKED = "fresh", "forked"
HOWS = (FRESH, FORKED)
# what every task's entrypoint imports first (kubeflow/entrypoint.py, then TFX's runner)
PRELOAD = [
    "tfx_metric_learning.kubeflow.entrypoint",
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
]
TIMEOUT_S = 1200


class TaskFailed(RuntimeError):
    """A task's process failed; the message holds the end of its output."""


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _run_module(module: str, args: list[str], env: dict, log_path: str) -> None:
    """In the forked child: the task's environment, output and argv, then ``python -m``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # else the server's: gettempdir() caches the first answer
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:  # the child ends with os._exit: run what an interpreter runs at exit
        atexit._run_exitfuncs()  # noqa: SLF001


def _module_of(argv: list[str]) -> str | None:
    """``<module>`` of ``[python, -m, <module>, ...]``, else None."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
        return argv[2]
    return None


def run(name: str, argv: list[str], env: dict, how: str) -> None:
    """Runs ``argv`` (``python`` already resolved to ``sys.executable``) as task ``name``."""
    if how not in HOWS:
        raise ValueError(f"how={how!r}: one of {HOWS}")
    module = _module_of(argv)
    if how == FRESH or module is None:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        if proc.returncode != 0:
            raise TaskFailed(f"task {name} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
        return
    fd, log_path = tempfile.mkstemp(prefix="task-", suffix=".log")
    os.close(fd)
    try:
        child = _context().Process(target=_run_module, args=(module, argv[3:], env, log_path))
        child.start()
        child.join(TIMEOUT_S)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise TaskFailed(f"task {name} still ran after {TIMEOUT_S} s")
        if child.exitcode != 0:
            with open(log_path, errors="replace") as f:
                tail = f.read()[-4000:]
            raise TaskFailed(f"task {name} exited with {child.exitcode}:\n{tail}")
    finally:
        os.remove(log_path)
