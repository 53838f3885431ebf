"""Command line: ``metric-learning run`` runs the pipeline locally; ``losses`` lists the losses."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

# google-api-core warns at import time about Python 3.10, once per generated module
warnings.filterwarnings("ignore", category=FutureWarning, module="google")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA plugins on a CPU machine) is noise unless asked for
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if "--verbose" in sys.argv else "3")

from trainer_module.stage_settings import SettingsError  # noqa: E402  (no TensorFlow import)

# exit status of a run the DataValidator stopped (2: refused before running, 1: failed)
EXIT_ANOMALIES = 3


def _add_beam_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable; "
        "default --runner=FnApiRunner --direct_running_mode=in_memory, Beam's DirectRunner "
        "for batch pipelines)",
    )


def _add_run_options(run: argparse.ArgumentParser, defaults: dict) -> None:
    """Where the data is, where the run writes and how it runs: ``run`` and ``schema``."""
    run.add_argument(
        "--data",
        default="",
        help="CSV or tf.Example TFRecord file, or a folder of them, local or a URI "
        "(default: the bundled digits, written into the pipeline root)",
    )
    run.add_argument(
        "--pipeline-root",
        default=defaults["pipeline_root"].default,
        help="folder or URI for artifacts (and, when local, ML Metadata, data and logs)",
    )
    run.add_argument(
        "--metadata-path",
        default="",
        help="ML Metadata's SQLite file (default: PIPELINE_ROOT/metadata.sqlite; required "
        "when the pipeline root is a URI)",
    )
    run.add_argument(
        "--serving-dir",
        default="",
        help="where Pusher writes blessed models (default: PIPELINE_ROOT/serving_model)",
    )
    run.add_argument(
        "--cpu-replicas",
        type=int,
        default=defaults["cpu_replicas"].default,
        help="logical CPU devices for MirroredStrategy when there is no GPU",
    )
    _add_beam_options(run)
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


def _add_schema_option(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--schema",
        default="",
        required=required,
        metavar="PATH",
        help="curated schema file (TFDV text format, kept in version control) that runs import "
        "and validate the new data against; a run given a PATH that does not exist yet first "
        "writes it as the schema command does (default: SchemaGen infers a schema on every "
        "run, which lets any change through)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser; the stages' options come from their settings."""
    from pipeline.cli_options import add_stage_options
    from pipeline.config import STAGES, PipelineConfig

    defaults = PipelineConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog="metric-learning",
        description="Train embedding models that separate vectors with a TFX pipeline, "
        "and prove it with retrieval metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)",
        description="Run ExampleGen -> StatisticsGen -> SchemaGen -> DataValidator -> "
        "Transform -> PairGen -> Trainer -> RetrievalEvaluator -> Pusher locally. "
        "Without --data, scikit-learn's handwritten digits are used.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_run_options(run, defaults)
    _add_schema_option(run)
    add_stage_options(run, STAGES)
    schema = sub.add_parser(
        "schema",
        help="infer a schema from the data (its newest span) and write it, curated, to a file",
        description="Run ExampleGen -> StatisticsGen -> SchemaGen locally and write the "
        "inferred schema to --schema, curated to gate later runs: drift comparators per "
        "feature, no enumeration of the classes (components/data_validator/"
        "schema_curation.py). Edit it and keep it in version control.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_run_options(schema, defaults)
    _add_schema_option(schema, required=True)
    add_stage_options(schema, STAGES)

    _add_compare_parser(sub, defaults)
    sub.add_parser("losses", help="list the registered losses and their parameters")
    comp = sub.add_parser(
        "compile",
        help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI (writes a file, runs "
        "nothing)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    comp.add_argument(
        "--data-root", required=True, help="folder (e.g. gs://bucket/data) of CSV or TFRecord files"
    )
    comp.add_argument("--pipeline-root", required=True, help="e.g. gs://bucket/pipeline-root")
    comp.add_argument("--serving-dir", default="", help="Pusher destination")
    comp.add_argument(
        "--output",
        default="pipeline.json",
        help=".json: a Vertex AI PipelineJob; .yaml: a PipelineSpec (schema 2.1) for KFP",
    )
    comp.add_argument(
        "--image",
        default="",
        help="container image with this package (default: kubeflow.runner.DEFAULT_IMAGE)",
    )
    comp.add_argument(
        "--compare",
        action="store_true",
        help="compile the comparison of the candidates below (as the compare command runs "
        "it, for --protocol) instead of one training",
    )
    _add_candidate_options(comp)
    _add_beam_options(comp)
    _add_schema_option(comp)
    add_stage_options(comp, STAGES)
    sched = sub.add_parser(
        "schedule",
        help="upload a compiled pipeline to a KFP host and create a recurring run",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sched.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://HOST:8080")
    sched.add_argument("--pipeline", required=True, help="PipelineSpec YAML from compile")
    sched.add_argument(
        "--cron", default="0 0 3 * * *", help="6-field cron expression (seconds first)"
    )
    sched.add_argument("--experiment", default="metric-learning")
    sched.add_argument("--job-name", default="metric-learning-retraining")
    sched.add_argument("--namespace", default=None)
    sched.add_argument("--token", default=None, help="bearer token for the KFP API")
    return parser


def _add_candidate_options(parser: argparse.ArgumentParser) -> None:
    """The candidates and seeds of a comparison (``compare``, ``compile --compare``)."""
    from pipeline.candidates import DEFAULT_LOSSES, DEFAULT_SEEDS

    parser.add_argument(
        "--losses",
        type=lambda text: [x.strip() for x in text.split(",") if x.strip()],
        default=[],
        metavar="NAME[,NAME...]",
        help="candidate losses with their default parameters (with no --losses and no "
        f"--candidate: {', '.join(DEFAULT_LOSSES)})",
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
        default=DEFAULT_SEEDS,
        help="trainings per candidate, seeds --seed, --seed + 1, ... (the same for every "
        "candidate, so results pair by seed)",
    )


def _add_compare_parser(sub, defaults: dict) -> None:
    from components.example_gen.settings import PROTOCOLS
    from pipeline.cli_options import add_stage_options
    from pipeline.config import STAGES

    compare = sub.add_parser(
        "compare",
        help="which loss separates this data best: train every candidate with several seeds, "
        "rank them on validation data, report on test data, bless and push the winner",
        description="One pipeline: shared ExampleGen -> StatisticsGen -> SchemaGen -> "
        "DataValidator -> Transform, then PairGen -> Trainer -> RetrievalEvaluator per "
        "(candidate, seed), then the Leaderboard; the winner (best mean validation MAP@R) "
        "goes through RetrievalEvaluator (against production) and Pusher. Branches already "
        "run are taken from the cache. Every option of run applies to every candidate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_run_options(compare, defaults)
    _add_schema_option(compare)
    _add_candidate_options(compare)
    compare.add_argument(
        "--protocol",
        type=lambda text: [x.strip() for x in text.split(",") if x.strip()],
        default=[PROTOCOLS[0]],
        metavar="P[,P]",
        help=f"one or both of {', '.join(PROTOCOLS)}; the first one's winner is blessed and "
        "pushed, the others only report",
    )
    compare.add_argument(
        "--markdown",
        default="",
        metavar="PATH",
        help="also write the leaderboards as Markdown tables (what the README shows)",
    )
    add_stage_options(compare, STAGES, exclude=("--protocol",))


def _component_beam_args(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        component, sep, arg = item.partition("=")
        if not sep or not arg:
            raise ValueError(f"--component-beam-arg expects COMPONENT=ARG, got {item!r}")
        out.setdefault(component, []).append(arg)
    return out


def config_from_args(args: argparse.Namespace):
    """A validated ``PipelineConfig`` from parsed ``run`` or ``compile`` arguments."""
    from pipeline.cli_options import stage_settings_from_args
    from pipeline.config import STAGES, PipelineConfig

    config = PipelineConfig(
        pipeline_root=args.pipeline_root,
        metadata_path=getattr(args, "metadata_path", ""),
        serving_dir=args.serving_dir,
        data=getattr(args, "data", ""),
        cpu_replicas=getattr(args, "cpu_replicas", 1),
        beam_args=list(args.beam_arg),
        component_beam_args=_component_beam_args(getattr(args, "component_beam_arg", [])),
        enable_cache=not getattr(args, "no_cache", False),
        schema_file=getattr(args, "schema", ""),
        **stage_settings_from_args(args, STAGES),
    )
    config.validate()
    return config


def strategy_words(name: str) -> str:
    """The training summary's strategy as the run summary says it (``none``: one device)."""
    return "one device, no distribution strategy" if name == "none" else name


def format_summary(summary: dict) -> str:
    """The end-of-run summary: metrics, blessing, where the pushed model is."""
    lines = ["", f"Run finished in {summary.get('seconds', 0):.1f} s."]
    ingest = summary.get("ingest")
    if ingest and ingest.get("spans_read"):
        left_out = ingest.get("spans_left_out")
        lines.append(
            f"Spans: newest {ingest['span']}; read {', '.join(map(str, ingest['spans_read']))}"
            + (
                f"; left out (rejected by validation) {', '.join(map(str, left_out))}"
                if left_out
                else ""
            )
            + "."
        )
    if ingest:
        dropped = sum(ingest["rows_dropped"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(ingest["rows_dropped"].items()))
        splits = ", ".join(f"{k} {v}" for k, v in sorted(ingest["split_rows"].items()))
        lines.append(
            f"Data: {ingest['rows_read']} rows read, {dropped} dropped"
            + (f" ({reasons})" if reasons else "")
            + f", {ingest['missing_values_imputed']} missing values imputed; split: {splits}."
        )
    validation = summary.get("validation")
    if validation:
        lines.append(validation_line(validation))
    metrics = summary.get("metrics")
    baseline = summary.get("baseline_metrics")
    if metrics:
        lines.append(
            "Retrieval metrics on the eval split (candidate"
            + (" vs baseline):" if baseline else "):")
        )
        for key, value in metrics.items():
            if isinstance(value, float):
                extra = f"   baseline {baseline[key]:.4f}" if baseline else ""
                lines.append(f"  {key:<16} {value:.4f}{extra}")
        for name, raw in (summary.get("raw_baselines") or {}).items():
            lines.append(f"  {name} (inputs, cosine): map_at_r {raw['map_at_r']:.4f}")
        lift = summary.get("lift_over_raw") or {}
        if lift.get("value") is not None:
            lines.append(
                f"  lift over raw features: {lift['metric']} {lift['value']:+.4f} "
                f"(over {lift['over']})"
            )
    training = summary.get("training")
    if training:
        lines.append(
            f"Trained with {training['loss']} on {training['num_replicas']} replica(s) "
            f"({strategy_words(training['strategy'])}), {training['total_steps']} steps."
        )
        kept = training.get("selection") or {}
        if kept.get("split"):
            before = " (the encoder before training)" if kept["kept_epoch"] == 0 else ""
            lines.append(
                f"Kept epoch {kept['kept_epoch']} of {training['epochs']}{before}: the best "
                f"validation {kept['metric']} ({kept['value']:.4f} on {kept['validation_rows']} "
                f"rows of the {kept['split']} split)."
            )
        if training.get("warm_started_from"):
            lines.append(f"Warm start from: {training['warm_started_from']}")
        if training.get("resumed_after_epoch"):
            lines.append(f"Resumed after epoch {training['resumed_after_epoch']} (preempted).")
    blessed = summary.get("blessed")
    if blessed is None:
        lines.append("Blessed: unknown (the evaluator did not run)")
    else:
        why = "" if blessed else f" ({'; '.join(summary.get('reasons') or [])})"
        lines.append(f"Blessed: {'yes' if blessed else 'no'}{why}")
    pushed = summary.get("pushed_model")
    lines.append(f"Pushed model: {pushed}" if pushed else "Pushed model: none (not pushed)")
    if summary.get("evaluation_uri"):
        lines.append(f"Evaluation: {summary['evaluation_uri']}")
    if summary.get("report"):
        lines.append(f"Report: {summary['report']}")
    for error in summary.get("report_errors") or []:
        lines.append(f"Report incomplete: {error}")
    if summary.get("log_file"):
        lines.append(f"Full log: {summary['log_file']}")
    return "\n".join(lines)


def comparison_markdown(summary: dict) -> str:
    """Each protocol's leaderboard as a Markdown table under a heading."""
    from components.leaderboard.report import markdown_table

    parts = []
    for protocol, result in summary["protocols"].items():
        if result.get("leaderboard"):
            parts.append(f"#### {protocol}\n\n{markdown_table(result['leaderboard'])}\n")
    return "\n".join(parts)


def format_comparison(summary: dict) -> str:
    """The end of a comparison: each protocol's leaderboard, its winner, the blessing and push."""
    from components.leaderboard.report import markdown_table, raw_verdict

    lines = ["", f"Comparison finished in {summary['seconds']:.1f} s."]
    for protocol, result in summary["protocols"].items():
        board = result.get("leaderboard")
        lines.append("")
        if not board:
            lines.append(f"{protocol}: no leaderboard (the pipeline stopped before it).")
            continue
        winner = board["winner"]
        lines += [
            f"Protocol {protocol} ({result['seconds']:.0f} s): test metrics on the "
            f"{board.get('split', 'eval')} split, mean ± 95% CI over seeds; ranked by mean "
            f"validation {board['selection']['metric']}.",
            markdown_table(board),
            f"Winner: {winner['candidate']} (seed {winner['seed']}, validation "
            f"{board['selection']['metric']} {winner['validation']:.4f}).",
            raw_verdict(board),
            f"Leaderboard: {result['leaderboard_uri']}",
        ]
        if board.get("report"):
            lines.append(f"Report: {board['report']}")
        run = result.get("run")
        if run is not None:
            blessed = run.get("blessed")
            if blessed is None:
                verdict = "unknown (the evaluator did not run)"
            else:
                verdict = "yes" if blessed else f"no ({'; '.join(run.get('reasons') or [])})"
            lines.append(f"Winner blessed against production: {verdict}")
            pushed = run.get("pushed_model")
            lines.append(f"Pushed model: {pushed}" if pushed else "Pushed model: none (not pushed)")
        elif protocol != summary["deploy_protocol"]:
            lines.append(
                f"(report only: the {summary['deploy_protocol']} winner is the one deployed)"
            )
    if summary.get("log_file"):
        lines.append(f"Full log: {summary['log_file']}")
    return "\n".join(lines)


def validation_line(validation: dict) -> str:
    """The DataValidator's verdict in one line (the anomalies by feature when there are any)."""
    from components.data_validator.executor import message

    found = validation["anomalies"]
    what = "Validation"
    if validation.get("span") is not None:
        baseline = validation.get("baseline_span")
        what += f" of span {validation['span']} against the schema" + (
            f" and span {baseline}" if baseline is not None else " (no earlier span to drift from)"
        )
    if not found:
        return f"{what}: no anomalies."
    if validation["accepted"]:
        return f"{what}: anomalies allowed (--allow-anomalies): {message(found)}"
    return (
        f"{what}: stopped before Transform, nothing trained or pushed: {message(found)} "
        f"(anomalies: {validation['anomalies_uri']})"
    )


def _root_cause(error: BaseException) -> BaseException:
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = error.__cause__ or error.__context__
        if nxt is None:
            break
        error = nxt
    return error


def _list_losses() -> int:
    from trainer_module.losses import registry

    for name in registry.names():
        spec = registry.get_spec(name)
        params = ", ".join(f"{k}={p.default!r}" for k, p in spec.params.items()) or "-"
        print(f"{name:<34} {spec.family:<15} input: {spec.input_mode:<9} params: {params}")
        print(f"{'':<34} {spec.summary}")
    return 0


# training options a comparison's candidates set (or that have no meaning in one)
PER_CANDIDATE_FLAGS = ("--loss", "--loss-param", "--warm-start")


def _comparison(args: argparse.Namespace, config) -> tuple[list, list[int], int]:
    """``(candidates, seeds, tuning trials)`` of ``compare`` or ``compile --compare``.

    Refuses the training options that each candidate sets itself (``--loss``,
    ``--loss-param``) or that a comparison does not do (``--warm-start``: every candidate
    starts from scratch, so they are compared on equal terms).
    """
    from pipeline import candidates
    from pipeline.cli_options import given

    wrong = [flag for flag in PER_CANDIDATE_FLAGS if given(args, flag)]
    if wrong:
        raise SettingsError(
            f"{', '.join(wrong)}: a comparison's candidates set the loss and its parameters "
            f"(--losses, --candidate 'NAME KEY=VALUE ...') and start from scratch"
        )
    chosen = candidates.from_options(args.losses, args.candidate)
    seeds = candidates.seeds(config.training.seed, args.seeds)
    return chosen, seeds, candidates.tuning_trials(args.tuning_trials)


def _compile(args: argparse.Namespace) -> int:
    from kubeflow import runner

    try:
        config = config_from_args(args)
        comparison = _comparison(args, config) if args.compare else None
        runner.compile_pipeline(
            config, args.data_root, args.output, args.image or runner.DEFAULT_IMAGE, comparison
        )
    except ValueError as e:  # SettingsError and DataError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Compiled for Kubeflow Pipelines v2: {args.output}")
    for path in runner.local_paths(config, args.data_root):
        print(
            f"warning: {path} is a local path: the cluster's pods read it only if it is mounted "
            f"at that path in every pod (a bucket URI such as gs://... needs no mount)",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``metric-learning`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "losses":
        return _list_losses()
    if args.command == "compile":
        return _compile(args)
    if args.command == "schedule":
        from kubeflow import schedule

        try:
            run_id = schedule.schedule(
                args.host,
                args.pipeline,
                args.cron,
                args.experiment,
                args.job_name,
                args.namespace,
                args.token,
            )
        except schedule.ScheduleError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"Recurring run {run_id} created on {args.host} ({args.cron}).")
        return 0
    from pipeline import local_runner, preflight, run_state

    try:
        config = config_from_args(args)
        if args.command == "schema" and not config.schema_file:
            raise ValueError("name the schema file to write with --schema")
        if args.command == "compare":
            import functools

            chosen, seeds, trials = _comparison(args, config)
            local_runner.comparison_configs(config, args.protocol)  # checks the protocols
            command = functools.partial(
                local_runner.compare,
                candidates=chosen,
                seeds=seeds,
                protocols=args.protocol,
                tuning_trials=trials,
            )
        log_file = os.path.join(
            local_runner.local_state_dir(config), "logs", time.strftime("run-%Y%m%d-%H%M%S.log")
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(f"Pipeline root: {config.pipeline_root}")
    if args.command == "run":
        print(
            f"Loss: {config.training.loss}  protocol: {config.ingest.protocol}  "
            f"epochs: {config.training.epochs}  batch: {config.training.batch_size}"
        )
    if args.command == "compare":
        print(
            f"Comparing {len(chosen)} candidate(s) x {len(seeds)} seed(s) "
            f"({', '.join(map(str, seeds))}) on {', '.join(args.protocol)}: "
            + "; ".join(c.label for c in chosen)
        )
    if args.command == "schema":
        command = local_runner.write_schema
    elif args.command == "run":
        command = local_runner.run
    try:
        summary = command(
            config,
            progress=print,
            log_file=log_file,
            quiet=not args.verbose,
            wait_for_lock=args.wait_for_lock,
        )
    except (run_state.RunRefused, preflight.PreflightError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the pipeline failed: show the cause, not the whole stack
        cause = _root_cause(e)
        import traceback

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
    if args.command == "schema":
        return 0
    summary["log_file"] = log_file
    if args.command == "compare":
        print(format_comparison(summary))
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(comparison_markdown(summary))
    else:
        print(format_summary(summary))
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    if args.command == "compare":
        summary = summary["protocols"][args.protocol[0]].get("run") or {}
    validation = summary.get("validation") or {}
    return EXIT_ANOMALIES if validation and not validation["accepted"] else 0


if __name__ == "__main__":
    sys.exit(main())
