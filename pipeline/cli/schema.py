"""``metric-learning schema``: infer a schema from the data and write it, curated, to a file."""

from __future__ import annotations

import argparse

from tfx_metric_learning.pipeline import local_runner
from tfx_metric_learning.pipeline.cli import common
from tfx_metric_learning.pipeline.cli.options import add_stage_options
from tfx_metric_learning.pipeline.config import STAGES


def add_parser(sub, name: str) -> None:
    """The ``schema`` subparser: the run flags, a required ``--schema``, the stages' settings."""
    parser = common.add_local_parser(
        sub,
        name,
        help="infer a schema from the data (its newest span) and write it, curated, to a file",
        description="Run ExampleGen -> StatisticsGen -> SchemaGen locally and write the "
        "inferred schema to --schema, curated to gate later runs: drift comparators per "
        "feature, no enumeration of the classes (components/data_validator/"
        "schema_curation.py). Edit it and keep it in version control.",
        schema_required=True,
    )
    add_stage_options(parser, STAGES)


def main(args: argparse.Namespace) -> int:
    """Writes the schema file; 0 when written."""
    done = common.execute(
        args, lambda config: (local_runner.write_schema, []), schema_is_output=True
    )
    return done if isinstance(done, int) else 0
