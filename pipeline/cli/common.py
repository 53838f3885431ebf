"""What the subcommands share: flags, the config they make, the local run's flow.

The run, Beam, schema and candidate flags; the config; the local run's log file, progress,
errors and exit status. Defaults of the run flags are ``PipelineConfig``'s (read from its
fields, never restated); the stages' flags come from their settings (``options``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.pipeline import (
    beam_policy,
    candidates,
    compare_plan,
    local_runner,
    paths,
    preflight,
    run_state,
)
from tfx_metric_learning.pipeline.cli.options import given, stage_settings_from_args
from tfx_metric_learning.pipeline.config import STAGES, PipelineConfig

# exit status of a run the DataValidator stopped (2: refused before running, 1: failed)
EXIT_ANOMALIES = 3
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports it
# training options a comparison's candidates set (or that have no meaning in one)
PER_CANDIDATE_FLAGS = ("--loss", "--loss-param", "--warm-start")


def _default(name: str) -> Any:
    """``PipelineConfig``'s default of field ``name``."""
    return {f.name: f for f in dataclasses.fields(PipelineConfig)}[name].default


def add_beam_options(parser: argparse.ArgumentParser) -> None:
    """``--beam-arg`` (repeatable)."""
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable; "
        "default --runner=FnApiRunner --direct_running_mode=in_memory, Beam's DirectRunner "
        "for batch pipelines)",
    )


def add_run_options(run: argparse.ArgumentParser) -> None:
    """Where the data is, where the run writes and how it runs: the local subcommands."""
    run.add_argument(
        "--data",
        default=_default("data"),
        help="CSV or tf.Example TFRecord file, or a folder of them, local or a URI "
        "(default: the bundled digits, written into the pipeline root)",
    )
    run.add_argument(
        "--pipeline-root",
        default=_default("pipeline_root"),
        help="folder or URI for artifacts (and, when local, ML Metadata, data and logs)",
    )
    run.add_argument(
        "--metadata-path",
        default=_default("metadata_path"),
        help="ML Metadata's SQLite file (default: PIPELINE_ROOT/metadata.sqlite; required "
        "when the pipeline root is a URI)",
    )
    run.add_argument(
        "--serving-dir",
        default=_default("serving_dir"),
        help="where Pusher writes blessed models (default: PIPELINE_ROOT/serving_model)",
    )
    run.add_argument(
        "--cpu-replicas",
        type=int,
        default=_default("cpu_replicas"),
        help="logical CPU devices for MirroredStrategy when there is no GPU",
    )
    add_beam_options(run)
    run.add_argument(
        "--beam-workers",
        type=int,
        default=_default("beam_workers"),
        metavar="N",
        help="worker processes for the Beam components of a local run (RetrievalEvaluator and "
        "GalleryIndex stay in-process): 0 = automatic (one per "
        f"CPU when the input is {beam_policy.PARALLEL_INPUT_BYTES // 2**20} MB or more, else "
        "in-process), 1 = in-process, N = N processes (default 0)",
    )
    run.add_argument(
        "--component-beam-arg",
        action="append",
        default=[],
        metavar="COMPONENT=ARG",
        help="a Beam argument for one component only, e.g. Transform=--direct_num_workers=2",
    )
    run.add_argument("--no-cache", action="store_true", help="re-run every component")
    run.add_argument(
        "--wait-for-lock",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another run of this pipeline is running, wait this long for it before refusing",
    )
    run.add_argument("--verbose", action="store_true", help="show TFX/Beam logs on the terminal")
    run.add_argument(
        "--summary-json",
        default="",
        metavar="PATH",
        help="also write the run summary (states, metrics, blessing) as JSON",
    )


def add_local_parser(
    sub, name: str, help: str, description: str, schema_required: bool = False
) -> argparse.ArgumentParser:
    """A subparser of a local run (``run``, ``schema``, ``compare``): run flags, ``--schema``.

    The caller adds the stages' settings and its own flags.
    """
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_run_options(parser)
    add_schema_option(parser, required=schema_required)
    return parser


def add_schema_option(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--schema PATH``: the curated schema file."""
    parser.add_argument(
        "--schema",
        default=_default("schema_file"),
        required=required,
        metavar="PATH",
        help="curated schema file (TFDV text format, kept in version control) that runs import "
        "and validate the new data against; a run given a PATH that does not exist yet first "
        "writes it as the schema command does (default: SchemaGen infers a schema on every "
        "run, which lets any change through)",
    )


def add_candidate_options(parser: argparse.ArgumentParser) -> None:
    """The candidates and seeds of a comparison (``compare``, ``compile --compare``)."""
    parser.add_argument(
        "--losses",
        type=lambda text: [x.strip() for x in text.split(",") if x.strip()],
        default=[],
        metavar="NAME[,NAME...]",
        help="candidate losses with their default parameters (with no --losses and no "
        f"--candidate: {', '.join(candidates.DEFAULT_LOSSES)})",
    )
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="'NAME KEY=VALUE ...'",
        help="a candidate with settings (repeatable): a loss and its parameters or training "
        "settings, e.g. 'triplet_semihard margin=0.2 learning_rate=0.003'",
    )
    parser.add_argument(
        "--tuning-trials",
        type=int,
        default=0,
        metavar="N",
        help="tune each candidate first: TFX's Tuner runs a KerasTuner random search of N "
        "trials over the learning rate and the loss's margin or temperature (what the "
        "candidate does not set), scored on validation MAP@R; 0: no tuning",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=candidates.DEFAULT_SEEDS,
        help="trainings per candidate, seeds --seed, --seed + 1, ... (the same for every "
        "candidate, so results pair by seed)",
    )
    parser.add_argument(
        "--max-branches",
        type=int,
        default=compare_plan.MAX_BRANCHES,
        metavar="N",
        help="refuse a comparison of more than N branches (candidates x seeds x protocols), "
        "before anything runs; the plan printed at the start says how many and how long",
    )


def component_beam_args(items: list[str]) -> dict[str, list[str]]:
    """``{component id: [Beam args]}`` from ``--component-beam-arg COMPONENT=ARG`` items."""
    out: dict[str, list[str]] = {}
    for item in items:
        component, sep, arg = item.partition("=")
        if not sep or not arg:
            raise ValueError(f"--component-beam-arg expects COMPONENT=ARG, got {item!r}")
        out.setdefault(component, []).append(arg)
    return out


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """A validated ``PipelineConfig`` from parsed arguments.

    Fields whose flags a subcommand lacks keep the config's defaults.
    """
    config = PipelineConfig(
        pipeline_root=args.pipeline_root,
        metadata_path=getattr(args, "metadata_path", _default("metadata_path")),
        serving_dir=args.serving_dir,
        data=getattr(args, "data", _default("data")),
        cpu_replicas=getattr(args, "cpu_replicas", _default("cpu_replicas")),
        beam_workers=getattr(args, "beam_workers", _default("beam_workers")),
        beam_args=list(args.beam_arg),
        component_beam_args=component_beam_args(getattr(args, "component_beam_arg", [])),
        enable_cache=not getattr(args, "no_cache", False),
        schema_file=getattr(args, "schema", _default("schema_file")),
        **stage_settings_from_args(args, STAGES),
    )
    config.validate()
    return config


def comparison(
    args: argparse.Namespace, config: PipelineConfig, protocols: int = 1
) -> tuple[list, list[int], int]:
    """``(candidates, seeds, tuning trials)`` of ``compare`` or ``compile --compare``.

    More branches (candidates x seeds x ``protocols``) than ``--max-branches`` are refused.

    Refuses the training options that each candidate sets itself (``--loss``,
    ``--loss-param``) or that a comparison does not do (``--warm-start``: every candidate
    starts from scratch, so they are compared on equal terms).
    """
    wrong = [flag for flag in PER_CANDIDATE_FLAGS if given(args, flag)]
    if wrong:
        raise SettingsError(
            f"{', '.join(wrong)}: a comparison's candidates set the loss and its parameters "
            f"(--losses, --candidate 'NAME KEY=VALUE ...') and start from scratch"
        )
    chosen = candidates.from_options(args.losses, args.candidate)
    seeds = candidates.seeds(config.training.seed, args.seeds)
    compare_plan.check_cap(len(chosen), len(seeds), protocols, args.max_branches)
    return chosen, seeds, candidates.tuning_trials(args.tuning_trials)


def refuse(error: BaseException) -> int:
    """Prints ``error`` and returns 2 (refused before running)."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def root_cause(error: BaseException) -> BaseException:
    """The innermost cause or context of ``error`` (what actually went wrong)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = error.__cause__ or error.__context__
        if nxt is None:
            break
        error = nxt
    return error


def path_problems(
    args: argparse.Namespace, config: PipelineConfig, schema_is_output: bool = False
) -> list[str]:
    """Every path the command reads or writes, checked before it runs (``pipeline/paths.py``).

    ``schema_is_output``: ``--schema`` is the file written (``metric-learning schema``), not
    a schema read.
    """
    files = {
        "--summary-json": getattr(args, "summary_json", None) or "",
        "--markdown": getattr(args, "markdown", None) or "",
    }
    schema = {"--schema": config.schema_file or ""}
    return paths.problems(
        inputs={"--data": config.data or ""},
        output_files=files | (schema if schema_is_output else {}),
        output_folders={
            "--pipeline-root": config.pipeline_root,
            "--serving-dir": config.serving_dir,
        },
        schema_inputs={} if schema_is_output else schema,
    )


def execute(
    args: argparse.Namespace,
    prepare: Callable[[PipelineConfig], tuple[Callable[..., dict], list[str]]],
    schema_is_output: bool = False,
) -> dict | int:
    """Runs a local command (``local_runner.run``, ``compare``, ``write_schema``).

    ``prepare(config)`` returns the command and lines announcing it; it, the config from
    ``args`` and the paths the command reads and writes (``path_problems``) may refuse
    (``ValueError``, exit status 2). Prints the pipeline root and the
    announcement, then one progress line per component; the full TFX/Beam log goes to
    ``<local state>/logs/run-<time>.log``. Returns the command's summary (with ``log_file``),
    or the exit status when refused (2), failed (1: the root cause printed, the traceback
    appended to the log) or interrupted (``EXIT_INTERRUPTED``, 130 as a shell gives SIGINT:
    one line, no traceback; the lock is released, and the next run marks the executions left
    RUNNING as FAILED).
    """
    try:
        config = config_from_args(args)
        found = path_problems(args, config, schema_is_output)
        if found:
            raise SettingsError("; ".join(found))
        command, announce = prepare(config)
        log_file = os.path.join(
            local_runner.local_state_dir(config), "logs", time.strftime("run-%Y%m%d-%H%M%S.log")
        )
    except (ValueError, FileNotFoundError) as e:
        return refuse(e)
    print(f"Pipeline root: {config.pipeline_root}")
    for line in announce:
        print(line)
    try:
        summary = command(
            config,
            progress=print,
            log_file=log_file,
            quiet=not args.verbose,
            wait_for_lock=args.wait_for_lock,
        )
    except (run_state.RunRefused, preflight.PreflightError, SettingsError) as e:
        return refuse(e)
    except KeyboardInterrupt:  # Ctrl-C: one line; the next run marks what was left RUNNING
        print(
            "\ninterrupted; rerun the same command to resume (finished steps come from the cache)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as e:  # the pipeline failed: show the cause, not the whole stack
        cause = root_cause(e)
        try:
            os.makedirs(os.path.dirname(log_file), exist_ok=True)
            with open(log_file, "a") as f:
                f.write(traceback.format_exc())
        except OSError as log_error:  # the log is a courtesy; the error must still be shown
            print(f"(could not write the log {log_file}: {log_error})", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        print(f"\nerror: the pipeline failed: {type(cause).__name__}: {cause}", file=sys.stderr)
        print(f"Full log: {log_file}", file=sys.stderr)
        return 1
    summary["log_file"] = log_file
    return summary


def write_summary_json(args: argparse.Namespace, summary: dict) -> None:
    """``--summary-json PATH``: the summary as JSON."""
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=2, default=str)


def exit_status(run_summary: dict) -> int:
    """0, or ``EXIT_ANOMALIES`` when the DataValidator stopped the run."""
    validation = run_summary.get("validation") or {}
    return EXIT_ANOMALIES if validation and not validation["accepted"] else 0
