import http.server
import os
import threading
import time

import pytest

from tfx_metric_learning.kubeflow import schedule
from tfx_metric_learning.pipeline import cli


@pytest.fixture
def package(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("pipelineInfo: {name: test}\n")
    return str(path)


def _listing(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def test_unreachable_host_fails_fast_and_writes_nothing(package, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    start = time.time()
    code = cli.main(["schedule", "--host", "http://127.0.0.1:9", "--pipeline", package])
    assert code == 2 and time.time() - start < 10
    assert "cannot reach Kubeflow Pipelines at http://127.0.0.1:9" in capsys.readouterr().err
    assert _listing(tmp_path) == before


class _Denied(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_missing_auth_is_named(package, capsys):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Denied)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        code = cli.main(["schedule", "--host", host, "--pipeline", package])
    finally:
        server.shutdown()
    assert code == 2
    assert "authentication is missing" in capsys.readouterr().err


def test_bad_cron_and_missing_package_are_refused_before_any_request(tmp_path):
    with pytest.raises(schedule.ScheduleError, match="6 fields"):
        schedule.schedule(
            "http://127.0.0.1:9",
            str(tmp_path / "x.yaml") if False else __file__,
            "0 3 * * *",
            "e",
            "j",
        )
    with pytest.raises(schedule.ScheduleError, match="does not exist"):
        schedule.schedule(
            "http://127.0.0.1:9", str(tmp_path / "none.yaml"), "0 0 3 * * *", "e", "j"
        )
