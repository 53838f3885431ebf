"""Runs the pipeline locally: LocalDagRunner, a SQLite ML Metadata store, Beam DirectRunner."""

from __future__ import annotations

import contextlib
import datetime
import logging as py_logging
import os
import time
from collections.abc import Callable, Iterator

import tensorflow as tf
from absl import logging as absl_logging
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.compiler import compiler
from tfx.dsl.compiler import constants as compiler_constants
from tfx.dsl.io import fileio
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.types import artifact_utils, standard_artifacts

from tfx_metric_learning.components.data_validator.executor import load_schema
from tfx_metric_learning.components.data_validator.schema_curation import write_curated
from tfx_metric_learning.pipeline import (
    beam_policy,
    preflight,
    run_report,
    run_state,
    tfx_progress,
)
from tfx_metric_learning.pipeline.config import PipelineConfig, is_remote
from tfx_metric_learning.pipeline.data import prepare_default_data
from tfx_metric_learning.pipeline.pipeline import (
    ALWAYS_RUN,
    create_pipeline,
    create_schema_pipeline,
)


def configure_cpu_devices(count: int) -> None:
    """Splits the CPU into ``count`` logical devices, so MirroredStrategy has replicas.

    Must run before TensorFlow initialises its devices (before any op runs).
    """
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


def new_run_id() -> str:
    """A run id: the local time to the microsecond (what LocalDagRunner itself would use)."""
    return datetime.datetime.now().isoformat()


def prepare(config: PipelineConfig) -> None:
    """Validates the config and checks that the run's local folders can be written.

    ``run_state.RunRefused`` or ``SettingsError`` name the problem; nothing is run.
    """
    config.validate()
    state_dir, root = local_state_dir(config), config.pipeline_root
    run_state.check_writable(
        state_dir, "pipeline root" if state_dir == root else "folder of --metadata-path"
    )
    if is_remote(root):
        try:
            fileio.makedirs(root)
        except Exception as e:  # any filesystem's error: the root cannot be used
            raise run_state.RunRefused(f"cannot create the pipeline root {root}: {e}") from None
    elif root != state_dir:
        run_state.check_writable(root, "pipeline root")


def run(
    config: PipelineConfig,
    progress: Callable[[str], None] = print,
    log_file: str | None = None,
    quiet: bool = False,
    wait_for_lock: float = 0.0,
) -> dict:
    """Runs the whole pipeline once; returns the summary of this run (see ``run_report``).

    Before any component runs: the config and the local folders are checked (``prepare``),
    the pipeline's run lock is taken (a second run waits ``wait_for_lock`` seconds, then
    ``run_state.RunRefused``), executions that killed runs left RUNNING are marked FAILED,
    and the data is checked (``preflight.check``, ``PreflightError``). The run's temp files
    live in a folder deleted when it ends. ``progress`` gets one line per component;
    ``log_file`` the full TFX/Beam log; ``quiet`` keeps those logs off the terminal.
    """
    with checked_and_locked(config, progress, wait_for_lock) as (run_id, data_path):
        if config.schema_file and not fileio.exists(config.schema_file):
            progress(f"No schema file {config.schema_file} yet: writing it from this data.")
            _write_schema(config, data_path, run_id + "-schema", progress, log_file, quiet)
        return _run_pipeline(config, data_path, run_id, progress, log_file, quiet)


def write_schema(
    config: PipelineConfig,
    progress: Callable[[str], None] = print,
    log_file: str | None = None,
    quiet: bool = False,
    wait_for_lock: float = 0.0,
) -> dict:
    """Runs ExampleGen -> StatisticsGen -> SchemaGen and writes the curated schema file.

    The lock and temp folder of ``run``, and its checks of what ingestion needs (nothing
    is trained, so no training setting is checked); ``config.schema_file`` is overwritten.
    Returns ``{"schema_file", "features", "drift_checked", "drift_unchecked"}``.
    """
    if not config.schema_file:
        raise run_state.RunRefused("name the schema file to write with --schema")

    def ingestion_only(data_path: str) -> object:
        return preflight.check(config, data_path, training=False)

    locked = checked_and_locked(config, progress, wait_for_lock, ingestion_only)
    with locked as (run_id, data_path):
        return _write_schema(config, data_path, run_id, progress, log_file, quiet)


@contextlib.contextmanager
def checked_and_locked(
    config: PipelineConfig,
    progress: Callable[[str], None],
    wait_for_lock: float,
    check: Callable[[str], object] | None = None,
) -> Iterator[tuple[str, str]]:
    """What every local run does before its pipeline runs; yields ``(run id, data path)``.

    The config and folders are checked (``prepare``), the pipeline's run lock is taken,
    executions killed runs left RUNNING are marked FAILED, the data is checked
    (``check(data_path)``, by default ``preflight.check`` of ``config``); the run's temp
    folder exists until the block ends, the lock until then.
    """
    prepare(config)
    state_dir = local_state_dir(config)
    run_id = new_run_id()
    lock = run_state.RunLock(state_dir, wait_seconds=wait_for_lock)
    lock.acquire(run_id)
    try:
        abandoned = run_report.mark_abandoned(
            config, f"its run ended without finishing it; marked by run {run_id}"
        )
        if abandoned:
            progress(
                f"Marked {len(abandoned)} execution(s) left RUNNING by a killed run as FAILED "
                f"in ML Metadata (ids {', '.join(map(str, abandoned))})."
            )
        data_path = config.data or prepare_default_data(config.data_dir)
        if check is None:
            preflight.check(config, data_path)
        else:
            check(data_path)
        with run_state.run_temp_dir(state_dir, run_id):
            yield run_id, data_path
    finally:
        lock.release()


def _write_schema(
    config: PipelineConfig,
    data_path: str,
    run_id: str,
    progress: Callable[[str], None],
    log_file: str | None,
    quiet: bool,
) -> dict:
    """The schema pipeline's run, then its schema curated and written (``write_curated``)."""
    config = beam_policy.local_config(config, data_path, progress)
    metadata = tfx_metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_schema_pipeline(config, data_path, metadata)
    execute(pipeline, run_id, progress, log_file, quiet)
    outputs = run_report.run_outputs(config, run_id)
    schema = load_schema(outputs["SchemaGen"]["schema"][0])
    stats_artifact = standard_artifacts.ExampleStatistics()
    found = outputs["StatisticsGen"]["statistics"][0]
    stats_artifact.uri = found.uri
    stats_artifact.split_names = found.properties["split_names"].string_value
    names = artifact_utils.decode_split_names(stats_artifact.split_names)
    stats = stats_artifact_utils.load_statistics(stats_artifact, names[0]).proto()
    written = write_curated(
        schema,
        stats,
        config.ingest.label_feature,
        config.validation.drift_threshold,
        config.validation.label_drift_threshold,
        config.schema_file,
    )
    unchecked = written["drift_unchecked"]
    progress(
        f"Wrote the curated schema {config.schema_file}: {written['features']} features, "
        f"drift checked for {len(written['drift_checked'])}"
        + (f", not for {len(unchecked)} mostly-zero ones" if unchecked else "")
        + ". Keep it in version control; edit thresholds per feature there."
    )
    return written


def _run_pipeline(
    config: PipelineConfig,
    data_path: str,
    run_id: str,
    progress: Callable[[str], None],
    log_file: str | None,
    quiet: bool,
) -> dict:
    configure_cpu_devices(config.cpu_replicas)

    config = beam_policy.local_config(config, data_path, progress)
    metadata = tfx_metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_pipeline(config, data_path, metadata)
    started = time.time()
    execute(pipeline, run_id, progress, log_file, quiet)
    summary = run_report.latest_run(config, run_id)
    summary["seconds"] = round(time.time() - started, 1)
    summary["data"] = data_path
    return summary


def never_cached(pipeline_ir, node_ids) -> None:
    """Switches caching off for the nodes ``node_ids`` of a compiled pipeline (IR).

    TFX sets every node's ``caching_options`` from the pipeline's ``enable_cache``; a node
    whose result depends on more than its inputs and properties (``pipeline.ALWAYS_RUN``)
    must run every time.
    """
    for node in pipeline_ir.nodes:
        if node.pipeline_node.node_info.id in node_ids:
            node.pipeline_node.execution_options.caching_options.enable_cache = False


def execute(
    pipeline,
    run_id: str,
    progress: Callable[[str], None],
    log_file: str | None,
    quiet: bool,
) -> None:
    """Compiles ``pipeline`` with ``run_id`` as its run id and runs it with LocalDagRunner."""
    # compiled here (the pipeline declares no pip dependencies for TFX to resolve) so that
    # the run id is ours and the summary reads this run, not merely the newest one
    pipeline_ir = compiler.Compiler().compile(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        pipeline_ir, {compiler_constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    never_cached(pipeline_ir, ALWAYS_RUN)

    absl_logger = py_logging.getLogger("absl")
    handlers: list[py_logging.Handler] = [
        tfx_progress.ProgressHandler(progress, total=len(pipeline.components))
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
    try:
        LocalDagRunner().run_with_ir(pipeline_ir)
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
