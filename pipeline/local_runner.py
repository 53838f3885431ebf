"""Runs the pipeline locally: LocalDagRunner, a SQLite ML Metadata store, Beam DirectRunner."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging as py_logging
import os
import time
from collections.abc import Callable, Iterator

import tensorflow as tf
import tensorflow_data_validation as tfdv
from absl import logging as absl_logging
from apache_beam.options.pipeline_options import StandardOptions
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.compiler import compiler
from tfx.dsl.compiler import constants as compiler_constants
from tfx.dsl.io import fileio
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.types import artifact_utils, standard_artifacts

from tfx_metric_learning.components.data_validator.executor import load_schema
from tfx_metric_learning.components.data_validator.schema_curation import curate
from tfx_metric_learning.components.example_gen import split_plan
from tfx_metric_learning.components.leaderboard.spec import LEADERBOARD_FILE
from tfx_metric_learning.pipeline import (
    compare_plan,
    preflight,
    run_report,
    run_state,
    tfx_progress,
)
from tfx_metric_learning.pipeline.candidates import require_validation_split
from tfx_metric_learning.pipeline.config import PipelineConfig, is_remote
from tfx_metric_learning.pipeline.data import input_paths, prepare_default_data
from tfx_metric_learning.pipeline.pipeline import (
    ALWAYS_RUN,
    create_compare_pipeline,
    create_pipeline,
    create_schema_pipeline,
)

# FnApiRunner is what Beam's DirectRunner runs batch pipelines on; named directly, Beam 2.74's
# DirectRunner does not first try to download and start its Prism runner (from GitHub) for
# every pipeline, a network-dependent detour of about a second each time.
DEFAULT_BEAM_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
# Unless the Beam arguments name the workers' dependencies, TFX builds and stages an sdist of
# itself for every Beam component (tfx.utils.dependency_utils.make_beam_dependency_flags,
# about 2 s each). Local workers run in this very environment, which has TFX; a container
# image is the one dependency flag local runners ignore.
LOCAL_WORKERS_ARG = "--sdk_container_image=this-environment"
# From this input size the local run's Beam components run on worker processes
# (parallel_beam_args). Measured on the 2-core machine, whole pipeline in-process vs on 2
# worker processes (benchmarks/pipeline_scale.py --workers, docs/scale.md "The whole pipeline at
# scale"): 132.5 s vs 139.3 s at 98 MB of CSV (200,000 rows; ExampleGen 13.1 s vs 15.9 s,
# PairGen 4.7 s vs 9.0 s), 539.7 s vs 414.6 s at 491 MB (1,000,000 rows; every Beam
# component faster, Transform 146.8 s vs 93.9 s).
PARALLEL_INPUT_BYTES = 256 * 2**20
DEPENDENCY_FLAGS = (
    "--extra_package",
    "--extra_packages",
    "--setup_file",
    "--requirements_file",
    "--worker_harness_container_image",
    "--sdk_container_image",
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


def beam_args(config: PipelineConfig) -> list[str]:
    """Local defaults overridden by the config's ``--beam-arg`` values.

    With a local runner (Beam's ``StandardOptions.LOCAL_RUNNERS``) and no dependency flag
    given, ``LOCAL_WORKERS_ARG`` is added so that TFX does not package itself for workers
    that already run here; a remote runner (Dataflow, Flink, Spark) gets nothing added.
    """
    given = {a.split("=", 1)[0] for a in config.beam_args}
    args = [a for a in DEFAULT_BEAM_ARGS if a.split("=", 1)[0] not in given]
    args += list(config.beam_args)
    runner = [a.split("=", 1)[1] for a in args if a.startswith("--runner=")][-1]
    if runner in StandardOptions.LOCAL_RUNNERS and not given & set(DEPENDENCY_FLAGS):
        args.append(LOCAL_WORKERS_ARG)
    return args


def input_bytes(config: PipelineConfig, data_path: str) -> int:
    """Bytes on storage of the files ExampleGen reads (a gzip file counts its compressed size)."""
    return sum(fileio.stat(p).length for p in input_paths(data_path, config.ingest))


def parallel_beam_args(config: PipelineConfig, data_path: str) -> tuple[list[str], str]:
    """``(Beam arguments, why)`` that run the Beam components on worker processes, or ``([], "")``.

    Worker processes are Beam's ``direct_running_mode=multi_processing`` with
    ``direct_num_workers``: ``config.beam_workers`` of them, or with 0 (automatic) as many as
    the CPUs this process may use, when there are 2 or more and the input holds at least
    ``PARALLEL_INPUT_BYTES``. Nothing is added with ``beam_workers`` 1, a runner that is not
    local, or Beam arguments that already choose the running mode or the workers; a
    component's own ``component_beam_args`` come after these, so they win.
    """
    args = beam_args(config)
    runner = [a.split("=", 1)[1] for a in args if a.startswith("--runner=")][-1]
    named = {a.split("=", 1)[0] for a in config.beam_args}
    if (
        config.beam_workers == 1
        or runner not in StandardOptions.LOCAL_RUNNERS
        or named & {"--direct_running_mode", "--direct_num_workers"}
    ):
        return [], ""
    workers, why = config.beam_workers, f"--beam-workers {config.beam_workers}"
    if not workers:
        cpus, size = len(os.sched_getaffinity(0)), input_bytes(config, data_path)
        if cpus < 2 or size < PARALLEL_INPUT_BYTES:
            return [], ""
        workers, why = cpus, f"{cpus} CPUs, input {size / 2**20:,.0f} MB"
    flags = ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return flags, f"Beam components on {workers} worker processes ({why})"


def local_config(
    config: PipelineConfig, data_path: str, progress: Callable[[str], None]
) -> PipelineConfig:
    """``config`` with the local run's Beam arguments (``beam_args``, ``parallel_beam_args``)."""
    parallel, why = parallel_beam_args(config, data_path)
    if parallel:
        progress(f"{why}; --beam-workers 1 keeps them in-process.")
    return dataclasses.replace(config, beam_args=beam_args(config) + parallel)


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
    with _checked_and_locked(config, progress, wait_for_lock) as (run_id, data_path):
        if config.schema_file and not _exists(config.schema_file):
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

    locked = _checked_and_locked(config, progress, wait_for_lock, ingestion_only)
    with locked as (run_id, data_path):
        return _write_schema(config, data_path, run_id, progress, log_file, quiet)


@contextlib.contextmanager
def _checked_and_locked(
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


def _exists(path: str) -> bool:

    return fileio.exists(path)


def _write_schema(
    config: PipelineConfig,
    data_path: str,
    run_id: str,
    progress: Callable[[str], None],
    log_file: str | None,
    quiet: bool,
) -> dict:

    config = local_config(config, data_path, progress)
    metadata = tfx_metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_schema_pipeline(config, data_path, metadata)
    _execute(pipeline, run_id, progress, log_file, quiet)
    outputs = run_report.run_outputs(config, run_id)
    schema = load_schema(outputs["SchemaGen"]["schema"][0])
    stats_artifact = standard_artifacts.ExampleStatistics()
    found = outputs["StatisticsGen"]["statistics"][0]
    stats_artifact.uri = found.uri
    stats_artifact.split_names = found.properties["split_names"].string_value
    names = artifact_utils.decode_split_names(stats_artifact.split_names)
    stats = stats_artifact_utils.load_statistics(stats_artifact, names[0]).proto()
    curated, unchecked = curate(
        schema,
        stats,
        config.ingest.label_feature,
        config.validation.drift_threshold,
        config.validation.label_drift_threshold,
    )
    fileio.makedirs(os.path.dirname(config.schema_file))
    tmp = f"{config.schema_file}.tmp"
    tfdv.write_schema_text(curated, tmp)
    fileio.rename(tmp, config.schema_file, overwrite=True)
    checked = [f.name for f in curated.feature if f.HasField("drift_comparator")]
    progress(
        f"Wrote the curated schema {config.schema_file}: {len(curated.feature)} features, "
        f"drift checked for {len(checked)}"
        + (f", not for {len(unchecked)} mostly-zero ones" if unchecked else "")
        + ". Keep it in version control; edit thresholds per feature there."
    )
    return {
        "schema_file": config.schema_file,
        "features": len(curated.feature),
        "drift_checked": checked,
        "drift_unchecked": unchecked,
    }


def _run_pipeline(
    config: PipelineConfig,
    data_path: str,
    run_id: str,
    progress: Callable[[str], None],
    log_file: str | None,
    quiet: bool,
) -> dict:
    configure_cpu_devices(config.cpu_replicas)

    config = local_config(config, data_path, progress)
    metadata = tfx_metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_pipeline(config, data_path, metadata)
    started = time.time()
    _execute(pipeline, run_id, progress, log_file, quiet)
    summary = run_report.latest_run(config, run_id)
    summary["seconds"] = round(time.time() - started, 1)
    summary["data"] = data_path
    return summary


def comparison_configs(config: PipelineConfig, protocols: list[str]) -> list[PipelineConfig]:
    """One config per protocol of a comparison; the first is the deployment protocol.

    The first protocol's pipeline keeps the config's pipeline name, so it shares the cache with
    ``run`` (and, as every pipeline pushing to the same serving folder, the production model);
    each other protocol's pipeline is named ``<name>-<protocol>`` and only reports.
    """
    require_validation_split(config.ingest.validation_fraction)
    if not protocols:
        raise ValueError("a comparison needs at least one protocol")
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"a protocol is given twice: {protocols}")
    out = []
    for i, protocol in enumerate(protocols):
        name = config.pipeline_name if i == 0 else f"{config.pipeline_name}-{protocol}"
        variant = dataclasses.replace(
            config,
            pipeline_name=name,
            ingest=dataclasses.replace(config.ingest, protocol=protocol),
        )
        variant.validate()
        out.append(variant)
    return out


def compare(
    config: PipelineConfig,
    candidates: list,
    seeds: list[int],
    protocols: list[str],
    progress: Callable[[str], None] = print,
    log_file: str | None = None,
    quiet: bool = False,
    wait_for_lock: float = 0.0,
    tuning_trials: int = 0,
    max_branches: int = compare_plan.MAX_BRANCHES,
) -> dict:
    """Runs the comparison pipeline of ``candidates`` x ``seeds`` once per protocol.

    Same checks, lock and temp folder as ``run``; the data is checked for every protocol and
    candidate before anything runs, then the plan is printed (``compare_plan``: branches,
    components, an estimate of the time; ``max_branches`` is only named there, the CLI
    refuses a larger plan before this runs). The first protocol's winner goes through the blessing
    against production and Pusher (``pipeline.create_compare_pipeline``); ``tuning_trials``
    > 0 tunes each candidate first. Returns
    ``{"seconds", "deploy_protocol", "protocols": {protocol: {"leaderboard",
    "leaderboard_uri", "seconds", "run" (the run summary of the blessing and push, first
    protocol only)}}}``.
    """
    configs = comparison_configs(config, protocols)
    trainings = {c.label: c.settings(config.training, seeds[0]) for c in candidates}

    found: list[dict] = []

    def check(data_path: str) -> None:
        found.extend(preflight.check(variant, data_path, trainings) for variant in configs)

    started = time.time()
    with _checked_and_locked(config, progress, wait_for_lock, check) as (run_id, data_path):
        plan = compare_plan.ComparePlan(
            candidates=len(candidates),
            seeds=len(seeds),
            tuning_trials=tuning_trials,
            components=sum(
                len(
                    create_compare_pipeline(
                        variant,
                        data_path,
                        candidates,
                        seeds,
                        deploy=i == 0,
                        tuning_trials=tuning_trials,
                    ).components
                )
                for i, variant in enumerate(configs)
            ),
            train_rows=[f["planned_split_rows"][split_plan.TRAIN] for f in found],
            epochs=[t.epochs for t in trainings.values()],
        )
        progress(plan.describe(max_branches))
        configure_cpu_devices(config.cpu_replicas)

        out: dict = {"deploy_protocol": protocols[0], "protocols": {}, "data": data_path}
        for i, variant in enumerate(configs):
            protocol = variant.ingest.protocol
            progress(f"Protocol {protocol}: {len(candidates)} candidate(s) x {len(seeds)} seed(s)")
            variant = local_config(variant, data_path, progress)
            metadata = tfx_metadata.sqlite_metadata_connection_config(variant.metadata_path)
            pipeline = create_compare_pipeline(
                variant,
                data_path,
                candidates,
                seeds,
                deploy=i == 0,
                metadata_connection_config=metadata,
                tuning_trials=tuning_trials,
            )
            protocol_started = time.time()
            protocol_run = f"{run_id}-{protocol}"
            _execute(pipeline, protocol_run, progress, log_file, quiet)
            outputs = run_report.run_outputs(variant, protocol_run)
            found = outputs.get("Leaderboard", {}).get("leaderboard")
            result: dict = {"seconds": round(time.time() - protocol_started, 1)}
            if found:
                result["leaderboard_uri"] = found[0].uri
                result["leaderboard"] = run_report.read_json(found[0].uri, LEADERBOARD_FILE)
            if i == 0:
                result["run"] = run_report.latest_run(variant, protocol_run)
            out["protocols"][protocol] = result
    out["seconds"] = round(time.time() - started, 1)
    return out


def never_cached(pipeline_ir, node_ids) -> None:
    """Switches caching off for the nodes ``node_ids`` of a compiled pipeline (IR).

    TFX sets every node's ``caching_options`` from the pipeline's ``enable_cache``; a node
    whose result depends on more than its inputs and properties (``pipeline.ALWAYS_RUN``)
    must run every time.
    """
    for node in pipeline_ir.nodes:
        if node.pipeline_node.node_info.id in node_ids:
            node.pipeline_node.execution_options.caching_options.enable_cache = False


def _execute(
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
