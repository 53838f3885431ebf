"""``metric-learning schedule``: a recurring run of a compiled pipeline, on KFP or Vertex AI."""

from __future__ import annotations

import argparse

from tfx_metric_learning.kubeflow import schedule
from tfx_metric_learning.pipeline.cli import common


def add_parser(sub, name: str) -> None:
    """The ``schedule`` subparser: the backend, the compiled pipeline, the cron."""
    parser = sub.add_parser(
        name,
        help="schedule a compiled pipeline: a recurring run on open-source Kubeflow Pipelines "
        "or a Vertex AI schedule",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--backend", choices=("kfp", "vertex"), default="kfp")
    parser.add_argument("--pipeline", required=True, help="the file compile wrote")
    parser.add_argument(
        "--cron",
        default="0 3 * * *",
        help="cron expression: 5 fields (minute hour day month weekday); Vertex also takes "
        "'TZ=Area/City ...', KFP also 6 fields (seconds first)",
    )
    kfp = parser.add_argument_group("open-source Kubeflow Pipelines (--backend kfp)")
    kfp.add_argument("--host", default=None, help="KFP API endpoint, e.g. http://HOST:8080")
    kfp.add_argument("--experiment", default="metric-learning")
    kfp.add_argument("--job-name", default="metric-learning-retraining")
    kfp.add_argument("--namespace", default=None)
    kfp.add_argument("--token", default=None, help="bearer token for the KFP API")
    kfp.add_argument(
        "--catch-up",
        action="store_true",
        help="run the intervals missed while the recurring run was paused (default: only the "
        "latest)",
    )
    vertex = parser.add_argument_group("Vertex AI (--backend vertex)")
    vertex.add_argument("--project", default=None, help="Google Cloud project")
    vertex.add_argument("--region", default=None, help="e.g. europe-west4")
    vertex.add_argument("--service-account", default=None)
    vertex.add_argument("--display-name", default="metric-learning-retraining")


def main(args: argparse.Namespace) -> int:
    """Creates the schedule; 2 when it cannot be created."""
    try:
        if args.backend == "kfp":
            if not args.host:
                raise schedule.ScheduleError("--backend kfp needs --host (the KFP API endpoint)")
            created = schedule.schedule_kfp(
                args.host,
                args.pipeline,
                args.cron,
                args.experiment,
                args.job_name,
                args.namespace,
                args.token,
                catch_up=args.catch_up,
            )
            where = args.host
        else:
            if not (args.project and args.region):
                raise schedule.ScheduleError("--backend vertex needs --project and --region")
            created = schedule.schedule_vertex(
                args.pipeline,
                args.cron,
                args.display_name,
                args.project,
                args.region,
                service_account=args.service_account,
            )
            where = f"Vertex AI ({args.project}, {args.region})"
    except schedule.ScheduleError as e:
        return common.refuse(e)
    print(f"Schedule {created} created on {where} ({args.cron}).")
    return 0
