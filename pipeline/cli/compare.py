"""``metric-learning compare``: which loss separates this data best, with numbers."""

from __future__ import annotations

import argparse
import functools

from tfx_metric_learning.components.example_gen.settings import PROTOCOLS
from tfx_metric_learning.pipeline import local_compare, run_summary
from tfx_metric_learning.pipeline.cli import common
from tfx_metric_learning.pipeline.cli.options import add_stage_options
from tfx_metric_learning.pipeline.config import STAGES


def add_parser(sub, name: str) -> None:
    """The ``compare`` subparser: run flags, candidates, protocols, the stages' settings."""
    parser = common.add_local_parser(
        sub,
        name,
        help="which loss separates this data best: train every candidate with several seeds, "
        "rank them on validation data, report on test data, bless and push the winner",
        description="One pipeline: shared ExampleGen -> StatisticsGen -> SchemaGen -> "
        "DataValidator -> Transform, then PairGen -> Trainer -> RetrievalEvaluator per "
        "(candidate, seed), then the Leaderboard; the winner (best mean validation MAP@R) "
        "goes through RetrievalEvaluator (against production) and Pusher. Branches already "
        "run are taken from the cache. Every option of run applies to every candidate.",
    )
    common.add_candidate_options(parser)
    parser.add_argument(
        "--protocol",
        type=lambda text: [x.strip() for x in text.split(",") if x.strip()],
        default=[PROTOCOLS[0]],
        metavar="P[,P]",
        help=f"one or both of {', '.join(PROTOCOLS)}; the first one's winner is blessed and "
        "pushed, the others only report",
    )
    parser.add_argument(
        "--markdown",
        default="",
        metavar="PATH",
        help="also write the leaderboards as Markdown tables (what docs/compare.md shows)",
    )
    add_stage_options(parser, STAGES, exclude=("--protocol",))


def main(args: argparse.Namespace) -> int:
    """Runs the comparison; prints the leaderboards; the exit status of the winner's run."""

    def prepare(config):
        local_compare.comparison_configs(config, args.protocol)  # checks the protocols
        chosen, seeds, trials = common.comparison(args, config, len(args.protocol))
        command = functools.partial(
            local_compare.compare,
            candidates=chosen,
            seeds=seeds,
            protocols=args.protocol,
            tuning_trials=trials,
            max_branches=args.max_branches,
        )
        return command, [
            f"Comparing {len(chosen)} candidate(s) x {len(seeds)} seed(s) "
            f"({', '.join(map(str, seeds))}) on {', '.join(args.protocol)}: "
            + "; ".join(c.label for c in chosen)
        ]

    summary = common.execute(args, prepare)
    if isinstance(summary, int):
        return summary
    print(run_summary.format_comparison(summary))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(run_summary.comparison_markdown(summary))
    common.write_summary_json(args, summary)
    return common.exit_status(summary["protocols"][args.protocol[0]].get("run") or {})
