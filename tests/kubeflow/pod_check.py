"""Run as ``python -m tests.kubeflow.pod_check OUT CODE`` by ``test_pods.py``: writes what a
task's process sees to OUT (JSON), prints to both streams, exits with CODE."""

import atexit
import json
import os
import sys
import tempfile


def _at_exit(out: str) -> None:
    with open(out + ".atexit", "w") as f:
        f.write("ran")


if __name__ == "__main__":
    out, code = sys.argv[1], int(sys.argv[2])
    atexit.register(_at_exit, out)
    seen = {
        "argv": sys.argv[1:],
        "env": os.environ.get("POD_CHECK"),
        "tmp": tempfile.gettempdir(),
        "name": __name__,
        "imported_tfx_runner": any("kubeflow_v2_run_executor" in m for m in sys.modules),
    }
    with open(out, "w") as f:
        json.dump(seen, f)
    print("to stdout")
    print(f"to stderr, exiting with {code}", file=sys.stderr)
    sys.exit(code)
