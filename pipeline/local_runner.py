"""Runs the pipeline locally: LocalDagRunner, a SQLite ML Metadata store, Beam DirectRunner."""

from __future__ import annotations

import dataclasses
import logging as py_logging
import os
import time
from collections.abc import Callable

from pipeline.config import PipelineConfig
from pipeline.data import check_label_column, prepare_default_data

DEFAULT_BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


def configure_cpu_devices(count: int) -> None:
    """Splits the CPU into ``count`` logical devices, so MirroredStrategy has replicas.

    Must run before TensorFlow initialises its devices (before any op runs).
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == count:
        return
    if count == 1 and current is None:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError as e:
        raise RuntimeError(
            f"cannot create {count} logical CPU devices: TensorFlow is already initialised "
            f"({e}); configure devices before running anything else in this process"
        ) from e


def local_state_dir(config: PipelineConfig) -> str:
    """The local folder of the run's own state: ML Metadata's SQLite file and the logs.

    It is the pipeline root when that is local; with a remote root (``gs://``, ...) the
    metadata path must be given, and its folder is used.
    """
    if not config.metadata_path:
        raise ValueError(
            f"pipeline root {config.pipeline_root} is remote: name a local SQLite file for ML "
            f"Metadata with --metadata-path"
        )
    return os.path.dirname(config.metadata_path)


def beam_args(config: PipelineConfig) -> list[str]:
    """DirectRunner defaults overridden by the config's ``--beam-arg`` values."""
    given = {a.split("=", 1)[0] for a in config.beam_args}
    return [a for a in DEFAULT_BEAM_ARGS if a.split("=", 1)[0] not in given] + list(
        config.beam_args
    )


class _ProgressHandler(py_logging.Handler):
    """Turns LocalDagRunner's log records into one progress line per component."""

    def __init__(self, emit_line: Callable[[str], None], total: int):
        super().__init__(level=py_logging.INFO)
        self._emit_line = emit_line
        self._total = total
        self._index = 0
        self._started = 0.0
        self._cached = False
        self._skipped = False

    def emit(self, record: py_logging.LogRecord) -> None:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith("Component %s is running."):
            self._index += 1
            self._started = time.time()
            self._cached = self._skipped = False
            self._emit_line(f"[{self._index}/{self._total}] {record.args[0]} ...")
        elif msg.startswith("A cached execution %d is used."):
            self._cached = True
        elif msg.startswith("Skipping execution for %s"):
            self._skipped = True
        elif msg.startswith("Component %s is finished."):
            state = "cached" if self._cached else "skipped" if self._skipped else "done"
            took = time.time() - self._started
            self._emit_line(
                f"[{self._index}/{self._total}] {record.args[0]} {state} ({took:.1f} s)"
            )


def run(
    config: PipelineConfig,
    progress: Callable[[str], None] = print,
    log_file: str | None = None,
    quiet: bool = False,
) -> dict:
    """Runs the whole pipeline once; returns the run summary (see ``run_report``).

    ``progress`` gets one line per component; ``log_file`` the full TFX/Beam log; ``quiet``
    keeps those logs off the terminal.
    """
    config.validate()
    configure_cpu_devices(config.cpu_replicas)
    from absl import logging as absl_logging
    from tfx import v1 as tfx

    from pipeline import run_report
    from pipeline.pipeline import create_pipeline

    os.makedirs(local_state_dir(config), exist_ok=True)
    if config.data:
        check_label_column(config.data, config.ingest.label_column)
        data_path = config.data
    else:
        data_path = prepare_default_data(config.data_dir)
    config = dataclasses.replace(config, beam_args=beam_args(config))
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_pipeline(config, data_path, metadata)

    absl_logger = py_logging.getLogger("absl")
    handlers: list[py_logging.Handler] = [
        _ProgressHandler(progress, total=len(pipeline.components))
    ]
    if log_file:
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        file_handler = py_logging.FileHandler(log_file)
        file_handler.setFormatter(
            py_logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        handlers.append(file_handler)
    loggers = [absl_logger] + [py_logging.getLogger(n) for n in ("apache_beam", "tensorflow")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    own_handlers = [(h, h.level) for lg in loggers for h in lg.handlers]
    for lg in loggers:
        lg.setLevel(py_logging.INFO)
        lg.propagate = not quiet
        if quiet:  # e.g. TensorFlow's own stderr handler
            for h in lg.handlers:
                h.setLevel(max(h.level, py_logging.ERROR))
        for h in handlers:
            lg.addHandler(h)
    absl_logging.set_verbosity(absl_logging.INFO)
    started = time.time()
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        for lg, level, propagate in saved:
            for h in handlers:
                lg.removeHandler(h)
            lg.setLevel(level)
            lg.propagate = propagate
        for h, level in own_handlers:
            h.setLevel(level)
        for h in handlers:
            h.close()
    summary = run_report.latest_run(config)
    summary["seconds"] = round(time.time() - started, 1)
    summary["data"] = data_path
    return summary
