"""Progress of a LocalDagRunner run, one line per component, read from TFX's log records.

TFX 1.16's ``LocalDagRunner`` offers no documented progress hook (no callback; it runs each
node inside ``run_with_ir``), so the component states come from the log records TFX writes,
matched on their exact format strings (``record.msg``, before formatting):

- ``tfx/orchestration/local/local_dag_runner.py``: ``RUNNING``, ``FINISHED`` around each node;
- ``tfx/orchestration/portable/launcher.py``: ``CACHED`` (the node's result came from the
  cache) and ``SKIPPED`` (its inputs were not there, e.g. nothing blessed to push).

``TEMPLATES`` names the module each string is in; ``tests/pipeline/test_tfx_progress.py``
checks them against the installed TFX's source, so a TFX that rewords one fails that test
instead of the runner silently printing no progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

RUNNING = "Component %s is running."
FINISHED = "Component %s is finished."
CACHED = "A cached execution %d is used."
SKIPPED = "Skipping execution for %s"
TEMPLATES = {
    RUNNING: "tfx.orchestration.local.local_dag_runner",
    FINISHED: "tfx.orchestration.local.local_dag_runner",
    CACHED: "tfx.orchestration.portable.launcher",
    SKIPPED: "tfx.orchestration.portable.launcher",
}


class ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's log records into ``[i/n] Component ...`` lines.

    ``[3/9] Transform ...`` when a component starts, ``[3/9] Transform done (12.3 s)`` (or
    ``cached``, ``skipped``) when it finishes; other records are ignored.
    """

    def __init__(self, emit_line: Callable[[str], None], total: int):
        super().__init__(level=logging.INFO)
        self._emit_line = emit_line
        self._total = total
        self._index = 0
        self._started = 0.0
        self._cached = False
        self._skipped = False

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.msg
        if msg == RUNNING:
            self._index += 1
            self._started = time.time()
            self._cached = self._skipped = False
            self._emit_line(f"[{self._index}/{self._total}] {record.args[0]} ...")
        elif msg == CACHED:
            self._cached = True
        elif msg == SKIPPED:
            self._skipped = True
        elif msg == FINISHED:
            state = "cached" if self._cached else "skipped" if self._skipped else "done"
            took = time.time() - self._started
            self._emit_line(
                f"[{self._index}/{self._total}] {record.args[0]} {state} ({took:.1f} s)"
            )
