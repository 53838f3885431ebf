"""The whole pipeline on a non-local file system: data, pipeline root and serving on ``ram://``.

``ram://`` is TensorFlow's in-memory file system, made reachable by Beam too
(``tfx_metric_learning/testing/filesystems.py``). Every artifact, temporary file, report and
pushed model must
land there: a write through ``open``/``os`` would create a local folder instead (or fail).
The run happens in a fresh process whose working directory and TMPDIR are empty folders,
which are listed afterwards.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_DIR

pytestmark = pytest.mark.e2e


def _files(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


@pytest.fixture(scope="module")
def remote_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ram")
    cwd, tmp, state = base / "cwd", base / "tmp", base / "state"
    for folder in (cwd, tmp, state):
        folder.mkdir()
    env = dict(
        os.environ,
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        TMPDIR=str(tmp),
        MPLCONFIGDIR=str(state / "matplotlib"),
        PYTHONPATH=REPO_DIR,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pipeline.remote_run_check", str(state)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["local"] = {"cwd": _files(cwd), "tmp": _files(tmp), "state": _files(state)}
    print("written to ram://:", json.dumps(out["written"], indent=1))
    print("written to local disk:", json.dumps(out["local"], indent=1))
    return out


def test_every_component_completes_and_the_model_is_pushed_to_ram(remote_run):
    summary = remote_run["summary"]
    assert set(summary["components"].values()) == {"COMPLETE"}, summary["components"]
    assert summary["blessed"] is True and summary["metrics"]["map_at_r"] > 0.7
    assert summary["pushed_model"].startswith("ram://bucket/serving/")
    assert summary["report"].startswith("ram://bucket/pipeline/")


def test_report_metrics_stats_and_model_land_on_ram(remote_run):
    root, serving = remote_run["written"]["root"], remote_run["written"]["serving"]
    evaluation = remote_run["summary"]["evaluation_uri"]
    for name in ("metrics.json", "evaluation.json", "report/report.html", "report/projection.png"):
        assert f"{evaluation}/{name}" in root, name
    assert any(p.endswith("/ingest_report.json") for p in root)
    assert any(p.endswith("/pair_gen_stats.json") for p in root)
    assert any(p.endswith("/BLESSED") for p in root)
    assert any(p.endswith("/training_summary.json") for p in root)
    pushed = remote_run["summary"]["pushed_model"]
    assert f"{pushed}/saved_model.pb" in serving
    # the pushed SavedModel, loaded back from ram://, embeds a raw row onto the unit sphere
    embedding = remote_run["embedding"][0]
    assert abs(sum(x * x for x in embedding) - 1.0) < 1e-4


def test_nothing_but_metadata_and_logs_is_written_to_local_disk(remote_run):
    local = remote_run["local"]
    assert local["cwd"] == []
    # TFX's throw-away sdist of itself for Beam (tfx/utils/dependency_utils.py), Beam's and
    # TensorFlow's temporary files go to the run's own temp folder, deleted after the run
    assert local["tmp"] == []
    state = [p for p in local["state"] if not p.startswith("matplotlib")]
    assert set(state) <= {"metadata.sqlite", "run.lock", "run.log"}, state
