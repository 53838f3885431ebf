"""The progress lines come from TFX's own log format strings, checked against TFX's source."""

import importlib
import inspect
import logging

from tfx_metric_learning.pipeline import tfx_progress


def test_every_template_is_in_the_installed_tfx_module_that_logs_it():
    for template, module in tfx_progress.TEMPLATES.items():
        source = inspect.getsource(importlib.import_module(module))
        assert f"'{template}'" in source or f'"{template}"' in source, (template, module)


def _record(msg, *args):
    return logging.LogRecord("absl", logging.INFO, __file__, 1, msg, args, None)


def test_records_become_one_line_per_component_with_its_state():
    lines = []
    handler = tfx_progress.ProgressHandler(lines.append, total=3)
    for record in (
        _record(tfx_progress.RUNNING, "ExampleGen"),
        _record("Beam is busy %s", "elsewhere"),  # ignored
        _record(tfx_progress.FINISHED, "ExampleGen"),
        _record(tfx_progress.RUNNING, "Transform"),
        _record(tfx_progress.CACHED, 17),
        _record(tfx_progress.FINISHED, "Transform"),
        _record(tfx_progress.RUNNING, "Pusher"),
        _record(tfx_progress.SKIPPED, "Pusher"),
        _record(tfx_progress.FINISHED, "Pusher"),
    ):
        handler.emit(record)
    assert [line.rsplit(" (", 1)[0] for line in lines] == [
        "[1/3] ExampleGen ...",
        "[1/3] ExampleGen done",
        "[2/3] Transform ...",
        "[2/3] Transform cached",
        "[3/3] Pusher ...",
        "[3/3] Pusher skipped",
    ]
