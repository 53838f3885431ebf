"""``metric-learning compile``: the pipeline for Kubeflow Pipelines v2 / Vertex AI (a file)."""

from __future__ import annotations

import argparse
import sys

from tfx_metric_learning.kubeflow import runner
from tfx_metric_learning.kubeflow.deployment import DeploymentSettings
from tfx_metric_learning.pipeline.cli import common
from tfx_metric_learning.pipeline.cli.options import add_stage_options, stage_settings_from_args
from tfx_metric_learning.pipeline.config import STAGES

DEPLOYMENT = {"deployment": DeploymentSettings}


def add_parser(sub, name: str) -> None:
    """The ``compile`` subparser: where the data and artifacts live, the image, the settings."""
    parser = sub.add_parser(
        name,
        help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI (writes a file, runs "
        "nothing)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-root", required=True, help="folder (e.g. gs://bucket/data) of CSV or TFRecord files"
    )
    parser.add_argument(
        "--pipeline-root",
        required=True,
        help="e.g. gs://bucket/pipeline-root: compiled into the spec as its pipeline root "
        "(artifacts under PIPELINE_ROOT/artifacts)",
    )
    parser.add_argument("--serving-dir", default="", help="Pusher destination")
    parser.add_argument(
        "--output",
        default="pipeline.json",
        help=".json: a Vertex AI PipelineJob; .yaml: a PipelineSpec (schema 2.1) for KFP",
    )
    parser.add_argument(
        "--image",
        default=runner.DEFAULT_IMAGE,
        help="container image with this package installed (kubeflow/Dockerfile)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compile the comparison of the candidates below (as the compare command runs "
        "it, for --protocol) instead of one training",
    )
    common.add_candidate_options(parser)
    common.add_beam_options(parser)
    common.add_schema_option(parser)
    add_stage_options(parser, STAGES)
    add_stage_options(parser, DEPLOYMENT)


def main(args: argparse.Namespace) -> int:
    """Writes the compiled pipeline; refuses what the cluster could not run."""
    try:
        config = common.config_from_args(args)
        deployment = stage_settings_from_args(args, DEPLOYMENT)["deployment"]
        comparison = common.comparison(args, config) if args.compare else None
        runner.compile_pipeline(
            config, args.data_root, args.output, args.image, comparison, deployment
        )
    except ValueError as e:  # SettingsError and DataError are ValueErrors
        return common.refuse(e)
    backend = {"kfp": "open-source Kubeflow Pipelines", "vertex": "Vertex AI Pipelines"}
    print(f"Compiled for {backend[deployment.target]}: {args.output}")
    for path in runner.local_paths(config, args.data_root):
        print(
            f"warning: {path} is a local path (--allow-local-paths): every pod must mount it "
            f"at that path",
            file=sys.stderr,
        )
    return 0
