"""``metric-learning losses``: every registered loss, its family, input and parameters."""

from __future__ import annotations

import argparse

from tfx_metric_learning.trainer_module.losses import registry


def add_parser(sub, name: str) -> None:
    """The ``losses`` subparser (no options)."""
    sub.add_parser(name, help="list the registered losses and their parameters")


def main(args: argparse.Namespace) -> int:
    """Prints two lines per loss: name, family, input, parameters=defaults; its summary."""
    for name in registry.names():
        spec = registry.get_spec(name)
        params = ", ".join(f"{k}={p.default!r}" for k, p in spec.params.items()) or "-"
        print(f"{name:<34} {spec.family:<15} input: {spec.input_mode:<9} params: {params}")
        print(f"{'':<34} {spec.summary}")
    return 0
