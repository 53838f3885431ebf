import os
import tempfile
import threading
import time

import pytest
from ml_metadata.proto import metadata_store_pb2

from tfx_metric_learning.pipeline import run_report, run_state
from tfx_metric_learning.pipeline.config import PipelineConfig


def test_second_lock_is_refused_naming_the_holder_and_granted_after_release(tmp_path):
    first = run_state.RunLock(str(tmp_path))
    first.acquire("run-1")
    with pytest.raises(run_state.RunRefused, match=r"run run-1 \(pid \d+ on .*is running"):
        run_state.RunLock(str(tmp_path)).acquire("run-2")
    waiting = run_state.RunLock(str(tmp_path), wait_seconds=30, poll_seconds=0.05)
    threading.Timer(0.3, first.release).start()
    started = time.monotonic()
    waiting.acquire("run-2")  # waits for the release instead of refusing
    assert 0.2 < time.monotonic() - started < 30
    waiting.release()


def test_lock_of_a_killed_process_is_free(tmp_path):
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies without releasing it
        run_state.RunLock(str(tmp_path)).acquire("killed")
        os._exit(0)
    os.waitpid(pid, 0)
    lock = run_state.RunLock(str(tmp_path))
    lock.acquire("next")
    lock.release()


def test_run_temp_dir_is_the_process_temp_dir_and_is_removed(tmp_path):
    stale = tmp_path / run_state.TEMP_DIR / "killed-run"
    stale.mkdir(parents=True)
    (stale / "big").write_bytes(b"x" * 1000)
    before = (os.environ.get("TMPDIR"), tempfile.gettempdir())
    with run_state.run_temp_dir(str(tmp_path), "2026-11-29T10:00:00.1") as path:
        assert os.environ["TMPDIR"] == path == tempfile.gettempdir()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"data")
        assert f.name.startswith(path)
        assert not stale.exists()
    assert not os.path.exists(path)
    assert (os.environ.get("TMPDIR"), tempfile.gettempdir()) == before


def test_unwritable_folder_is_refused_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(run_state.RunRefused, match="cannot write the pipeline root .*file/sub"):
        run_state.check_writable(str(blocker / "sub"), "pipeline root")


def test_executions_left_running_are_marked_failed(tmp_path):
    config = PipelineConfig(pipeline_root=str(tmp_path))
    store = run_report._store(config)
    kind = metadata_store_pb2.ExecutionType(name="Trainer")
    type_id = store.put_execution_type(kind)
    states = metadata_store_pb2.Execution.State
    executions = []
    for state in (states.RUNNING, states.COMPLETE, states.NEW, states.CACHED):
        e = metadata_store_pb2.Execution(type_id=type_id, last_known_state=state)
        executions.append(e)
    ids = store.put_executions(executions)
    marked = run_report.mark_abandoned(config, "killed")
    assert sorted(marked) == [ids[0], ids[2]]
    after = {e.id: e for e in store.get_executions_by_id(ids)}
    assert after[ids[0]].last_known_state == states.FAILED
    assert after[ids[0]].custom_properties["abandoned"].string_value == "killed"
    assert after[ids[1]].last_known_state == states.COMPLETE
    assert after[ids[3]].last_known_state == states.CACHED
    assert run_report.mark_abandoned(config, "again") == []
