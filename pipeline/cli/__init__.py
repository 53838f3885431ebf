"""The ``metric-learning`` command line: one module per subcommand.

``run`` (the pipeline, locally), ``schema`` (write a curated schema), ``compare`` (which loss
separates best), ``losses`` (the registered losses), ``compile`` (for Kubeflow Pipelines v2)
``schedule`` (a recurring run on a KFP host), ``embed`` and ``query`` (a pushed model and
its gallery index, for people). Each module has ``add_parser(subparsers)``
and ``main(args) -> exit status``; the flags of the stages' settings are generated from
their field metadata (``options``), the shared flags are in ``common``.

Exit status: 0 done; 1 the pipeline failed; 2 refused before running (bad flags, data or
state); ``common.EXIT_ANOMALIES`` (3) the DataValidator stopped the run.
"""

from __future__ import annotations

import os
import sys
import warnings

# google-api-core warns at import time about Python 3.10, once per generated module
warnings.filterwarnings("ignore", category=FutureWarning, module="google")
# TensorFlow's C++ start-up chatter (CUDA plugins on a CPU machine) is noise unless asked for;
# set before the subcommands import TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if "--verbose" in sys.argv else "3")

import argparse  # noqa: E402

from tfx_metric_learning.pipeline.cli import (  # noqa: E402
    compare,
    compile_kfp,
    lookup,
    losses,
    run,
    schedule,
    schema,
)
from tfx_metric_learning.pipeline.cli.common import EXIT_ANOMALIES  # noqa: E402

__all__ = ["EXIT_ANOMALIES", "build_parser", "main"]

SUBCOMMANDS = {
    "run": run,
    "schema": schema,
    "compare": compare,
    "losses": losses,
    "compile": compile_kfp,
    "schedule": schedule,
    "embed": lookup,
    "query": lookup,
}


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser, one subparser per subcommand module."""
    parser = argparse.ArgumentParser(
        prog="metric-learning",
        description="Train embedding models that separate vectors with a TFX pipeline, "
        "and prove it with retrieval metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``metric-learning`` console script."""
    args = build_parser().parse_args(argv)
    return SUBCOMMANDS[args.command].main(args)
