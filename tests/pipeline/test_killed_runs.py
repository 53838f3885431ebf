"""A whole run killed by a real signal, then the same command again, as a scheduler retries.

Run 1 gets Ctrl-C (SIGINT to its process group, as a terminal sends it) while Transform
runs and says so in one line, exit 130; run 2 gets SIGKILL while the Trainer trains; run 3
(the same command) completes: what finished before is reused from the cache, the executions the
killed runs left RUNNING are marked FAILED, and the serving folder holds one whole model.
"""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from tfx_metric_learning.components.production import record as production_record
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.components.pusher.executor import is_complete
from tfx_metric_learning.pipeline import data
from tfx_metric_learning.pipeline.cli.common import EXIT_INTERRUPTED
from tfx_metric_learning.pipeline.config import TRAINER_STATE

pytestmark = pytest.mark.e2e


def start(args):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "tfx_metric_learning.pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # the signal goes to the run and every process it started
    )


def kill_when(process, line_start, sig, delay=0.0, until=None):
    """Reads progress lines until ``line_start`` starts; then ``sig`` after ``delay``; returns
    everything the run printed.

    With ``until`` (a callable), the signal waits instead until ``until()`` is true, polled
    every 50 ms while the run is alive: a fixed delay races a fast machine.
    """
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("[") and line_start in line and line.rstrip().endswith("..."):
            time.sleep(delay)
            while until is not None and not until() and process.poll() is None:
                time.sleep(0.05)
            assert process.poll() is None, "the run ended before the signal: " + "".join(seen)
            os.killpg(process.pid, sig)
            break
    seen.append(process.stdout.read())  # what the run said after the signal
    process.wait(timeout=120)
    return "".join(seen)


def an_epoch_saved(root):
    """True once the Trainer has saved an epoch's resumable state under ``root``."""
    return bool(glob.glob(os.path.join(root, TRAINER_STATE, "*", "checkpoint")))


def test_killed_runs_rerun_to_completion_reusing_the_cache(tmp_path):
    csv = tmp_path / "data" / "digits.csv"
    csv.parent.mkdir()
    csv.write_text(data.digits_csv_text(limit=600))
    root = str(tmp_path / "root")
    args = [
        "run", "--data", str(csv), "--pipeline-root", root,
        "--epochs", "6", "--batch-size", "64",
    ]  # fmt: skip

    first = start(args)
    out1 = kill_when(first, "Transform", signal.SIGINT, delay=1)
    assert first.returncode == EXIT_INTERRUPTED, out1
    assert "interrupted; rerun the same command to resume" in out1
    assert "Traceback" not in out1 and "KeyboardInterrupt" not in out1, out1
    second = start(args)
    # killed mid-training: after its first epoch's state is saved, before the last epoch
    out2 = kill_when(second, "Trainer", signal.SIGKILL, until=lambda: an_epoch_saved(root))
    assert second.returncode == -signal.SIGKILL, out2
    assert "FileBasedExampleGen cached" in out2 and "StatisticsGen cached" in out2
    assert "Marked 1 execution(s) left RUNNING" in out2  # run 1's Transform

    third = start(args)
    out3, _ = third.communicate(timeout=900)
    assert third.returncode == 0, out3
    assert "PairGen done" in out2  # finished before run 2's Trainer started
    for node in ("FileBasedExampleGen", "StatisticsGen", "SchemaGen", "DataValidator"):
        assert f"{node} cached" in out3, (node, out3)
    for node in ("Transform", "PairGen"):  # completed by run 2, killed later
        assert f"{node} cached" in out3, (node, out3)
    assert "Marked 1 execution(s) left RUNNING" in out3  # run 2's Trainer
    assert "Blessed: yes" in out3

    serving = tmp_path / "root" / "serving_model"
    versions = [v for v in os.listdir(serving) if v.isdigit()]
    assert len(versions) == 1 and is_complete(str(serving / versions[0]))
    # production is that one version, and nothing half-written is left beside the record
    assert production_record.read(str(serving)).record["version"] == versions[0]
    assert set(os.listdir(serving)) - set(versions) == {
        production_spec.HISTORY_DIR,
        production_spec.RECORD_FILE,
    }
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(tmp_path / "root" / "metadata.sqlite")
    store = metadata_store.MetadataStore(connection)
    states = metadata_store_pb2.Execution.State
    assert not [e for e in store.get_executions() if e.last_known_state == states.RUNNING]
