"""The local run's Beam arguments: which runner, which workers, and when to use processes.

beam_args: the local defaults (Beam's FnApiRunner in memory) overridden by --beam-arg;
parallel_beam_args: worker processes for inputs from PARALLEL_INPUT_BYTES on;
local_config: the config with both applied.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from apache_beam.options.pipeline_options import StandardOptions
from tfx.dsl.io import fileio

from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.data import input_paths

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

# What keeps a Beam component in-process when the others run on worker processes; given to
# the components whose work is one model's TensorFlow calls over examples (the pipeline's
# ``MODEL_EMBEDDING`` kinds). TensorFlow already spreads each call over every core, so worker
# processes add only their start-up, each loading TensorFlow and the model. Measured on the
# 2-core machine with the 1,000,000-row benchmark's artifacts (embed_splits, 1,024 rows a
# batch): the eval split (300,000 rows) 4.9 s in-process vs 8.3 s on 2 workers, all 1,000,000
# rows 12.4 s vs 13.9 s. InputBaselines (parsing, keys and a sample per row in Python) gains
# from workers, 22.3 s vs 33.9 s, and keeps them.
IN_PROCESS_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]

DEPENDENCY_FLAGS = (
    "--extra_package",
    "--extra_packages",
    "--setup_file",
    "--requirements_file",
    "--worker_harness_container_image",
    "--sdk_container_image",
)


def beam_args(config: PipelineConfig) -> list[str]:
    """Local defaults overridden by the config's ``--beam-arg`` values.

    With a local runner (Beam's ``StandardOptions.LOCAL_RUNNERS``) and no dependency flag
    given, ``LOCAL_WORKERS_ARG`` is added so that TFX does not package itself for workers
    that already run here; a remote runner (Dataflow, Flink, Spark) gets nothing added.
    """
    given = {a.split("=", 1)[0] for a in config.beam_args}
    args = [a for a in DEFAULT_BEAM_ARGS if a.split("=", 1)[0] not in given]
    return with_local_dependency(args + list(config.beam_args))


def with_local_dependency(args: Sequence[str]) -> list[str]:
    """``args`` and ``LOCAL_WORKERS_ARG`` when they run a local runner and name no dependency.

    The runner is the last ``--runner=`` given (Beam's default, the DirectRunner, without
    one); a dependency is one of ``DEPENDENCY_FLAGS``. Otherwise ``args`` unchanged.
    """
    args = list(args)
    runners = [a.split("=", 1)[1] for a in args if a.startswith("--runner=")]
    named = {a.split("=", 1)[0] for a in args}
    local = (runners[-1] if runners else "DirectRunner") in StandardOptions.LOCAL_RUNNERS
    if local and not named & set(DEPENDENCY_FLAGS):
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


def model_embedding_args(args: list[str]) -> list[str]:
    """``IN_PROCESS_ARGS`` when ``args`` run a local runner on worker processes, else ``[]``.

    Worker processes: the last ``--direct_running_mode`` given is ``multi_processing``.
    """
    modes = [a.split("=", 1)[1] for a in args if a.startswith("--direct_running_mode=")]
    return list(IN_PROCESS_ARGS) if modes and modes[-1] == "multi_processing" else []


def local_config(
    config: PipelineConfig, data_path: str, progress: Callable[[str], None]
) -> PipelineConfig:
    """``config`` with the local run's Beam arguments (``beam_args``, ``parallel_beam_args``)."""
    parallel, why = parallel_beam_args(config, data_path)
    if parallel:
        progress(f"{why}; --beam-workers 1 keeps them in-process.")
    return dataclasses.replace(config, beam_args=beam_args(config) + parallel)
