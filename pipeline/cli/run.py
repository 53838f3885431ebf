"""``metric-learning run``: the whole pipeline, locally (LocalDagRunner, Beam DirectRunner)."""

from __future__ import annotations

import argparse

from tfx_metric_learning.pipeline import local_runner, run_summary
from tfx_metric_learning.pipeline.cli import common
from tfx_metric_learning.pipeline.cli.options import add_stage_options
from tfx_metric_learning.pipeline.config import STAGES


def add_parser(sub, name: str) -> None:
    """The ``run`` subparser: the run flags, ``--schema`` and every stage's settings."""
    parser = common.add_local_parser(
        sub,
        name,
        help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)",
        description="Run ExampleGen -> StatisticsGen -> SchemaGen -> DataValidator -> "
        "Transform -> PairGen -> Trainer -> RetrievalEvaluator -> GalleryIndex -> Pusher locally. "
        "Without --data, scikit-learn's handwritten digits are used.",
    )
    add_stage_options(parser, STAGES)


def main(args: argparse.Namespace) -> int:
    """Runs the pipeline; prints the summary; the exit status of the run."""

    def prepare(config):
        training = config.training
        return local_runner.run, [
            f"Loss: {training.loss}  protocol: {config.ingest.protocol}  "
            f"epochs: {training.epochs}  batch: {training.batch_size}"
        ]

    summary = common.execute(args, prepare)
    if isinstance(summary, int):
        return summary
    print(run_summary.format_summary(summary))
    common.write_summary_json(args, summary)
    return common.exit_status(summary)
