"""run_fn in a process of its own (2 logical CPUs, MirroredStrategy), for test_preemption.py.

    python -m tests.trainer_module.preemption_check EXAMPLES SCHEMA GRAPH OUT SETTINGS_JSON

Logs at INFO on stderr (the epoch lines the test watches); exits 0 after the export.
"""

import json
import sys

from absl import logging

from tfx_metric_learning.pipeline.local_runner import configure_cpu_devices


def main(examples: str, schema: str, graph: str, out: str, settings: str) -> None:
    configure_cpu_devices(2)
    logging.set_verbosity(logging.INFO)
    from tests.trainer_module.run_helpers import fn_args_from
    from tfx_metric_learning.trainer_module import run

    run.run_fn(fn_args_from(examples, schema, graph, out, json.loads(settings)))


if __name__ == "__main__":
    main(*sys.argv[1:])
