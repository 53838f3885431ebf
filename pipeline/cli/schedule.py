"""``metric-learning schedule``: upload a compiled pipeline and create a recurring run."""

from __future__ import annotations

import argparse

from tfx_metric_learning.kubeflow import schedule
from tfx_metric_learning.pipeline.cli import common


def add_parser(sub, name: str) -> None:
    """The ``schedule`` subparser: the KFP host, the compiled pipeline, the cron."""
    parser = sub.add_parser(
        name,
        help="upload a compiled pipeline to a KFP host and create a recurring run",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://HOST:8080")
    parser.add_argument("--pipeline", required=True, help="PipelineSpec YAML from compile")
    parser.add_argument(
        "--cron", default="0 0 3 * * *", help="6-field cron expression (seconds first)"
    )
    parser.add_argument("--experiment", default="metric-learning")
    parser.add_argument("--job-name", default="metric-learning-retraining")
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--token", default=None, help="bearer token for the KFP API")


def main(args: argparse.Namespace) -> int:
    """Creates the recurring run; 2 when the host refuses."""
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
        return common.refuse(e)
    print(f"Recurring run {run_id} created on {args.host} ({args.cron}).")
    return 0
