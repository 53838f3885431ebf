"""One worker of ``run_fn`` across two processes (``TF_CONFIG`` set by the caller).

    python -m tests.trainer_module.multiworker_run_check EXAMPLES SCHEMA GRAPH SETTINGS_JSON

Every output (export, run folder, resumable state) goes to ``ram://out``: TensorFlow's
in-memory filesystem, private to this process. At the end the process prints, as JSON, every
file it left there, so the test sees exactly what each worker wrote.
"""

import json
import sys

from tests.trainer_module.run_helpers import fn_args_from
from tfx_metric_learning.trainer_module import run

OUT = "ram://out"


def main(examples: str, schema: str, graph: str, settings: str) -> None:
    import tensorflow as tf
    from absl import logging

    logging.set_verbosity(logging.INFO)
    config = json.loads(settings) | {"checkpoint_dir": f"{OUT}/state"}
    run.run_fn(fn_args_from(examples, schema, graph, OUT, config))
    left = []
    if tf.io.gfile.exists(OUT):
        for root, _, files in tf.io.gfile.walk(OUT):
            left += [f"{root}/{name}"[len(OUT) + 1 :] for name in files]
    print(json.dumps(sorted(left)))


if __name__ == "__main__":
    main(*sys.argv[1:])
