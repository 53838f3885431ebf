"""Schedules through the backends' real client libraries, their HTTP layer a server on loopback.

``kfp.Client`` (open-source Kubeflow Pipelines) and ``aiplatform.PipelineJob.create_schedule``
(Vertex AI, REST transport) talk to a local HTTP server that records each request and answers
as the API does; the tests assert what was sent: the compiled spec, its pipeline root, the
cron, one run at a time, no catch-up, caching left as compiled.
"""

import http.server
import os
import threading
import time

import pytest
import yaml

from tests.kubeflow import fake_engines
from tfx_metric_learning.kubeflow import run_plan, schedule
from tfx_metric_learning.pipeline import cli


class _Api(fake_engines.JsonHandler):
    """Answers KFP's v2beta1 and Vertex's v1 calls; ``server.requests`` records them."""

    def _answer(self, status, body):
        self._send(status, body)

    def _record(self):
        body = self._body()
        self.server.requests.append((self.command, self.path.split("?")[0], body))
        return body

    def do_GET(self):  # noqa: N802
        self._record()
        if self.server.status != 200:
            return self._answer(self.server.status, {})
        if self.path.startswith("/apis/v2beta1/experiments"):
            return self._answer(200, {"experiments": [], "total_size": 0})
        return self._answer(200, {})

    def do_POST(self):  # noqa: N802
        body = self._record()
        if self.path.startswith("/apis/v2beta1/experiments"):
            return self._answer(200, {"experiment_id": "exp-1", **body})
        if self.path.startswith("/apis/v2beta1/recurringruns"):
            return self._answer(200, {"recurring_run_id": "rr-1", **body})
        if "/schedules" in self.path:  # Vertex: the created Schedule
            return self._answer(200, {"name": "projects/p/locations/r/schedules/7", **body})
        return self._answer(404, {})


@pytest.fixture
def api():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Api)
    server.requests, server.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = tmp_path_factory.mktemp("sched") / "pipeline.yaml"
    args = ["compile", "--data-root", "gs://b/d", "--pipeline-root", "gs://b/pipeline-root"]
    assert cli.main([*args, "--output", str(path)]) == 0
    return str(path)


def _proto(spec: dict):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    return json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True)


def _host(api):
    return f"http://127.0.0.1:{api.server_address[1]}"


def test_a_kfp_recurring_run_carries_the_spec_its_root_and_no_catch_up(api, package):
    run_id = schedule.schedule_kfp(_host(api), package, "0 3 * * *", "ml", "daily")
    assert run_id == "rr-1"
    posts = {path: body for method, path, body in api.requests if method == "POST"}
    assert posts["/apis/v2beta1/experiments"]["display_name"] == "ml"
    recurring = posts["/apis/v2beta1/recurringruns"]
    assert recurring["display_name"] == "daily" and recurring["experiment_id"] == "exp-1"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["no_catchup"] is True and int(recurring["max_concurrency"]) == 1
    assert recurring["runtime_config"]["pipeline_root"] == "gs://b/pipeline-root/artifacts"
    # the compiled spec, as a proto (the client drops a false enableCache, proto3's default)
    assert _proto(recurring["pipeline_spec"]) == _proto(yaml.safe_load(open(package)))
    # caching as compiled: the run's plan never cached, the others cached
    tasks = _proto(recurring["pipeline_spec"]).root.dag.tasks
    assert not tasks[run_plan.TASK].caching_options.enable_cache
    assert tasks["FileBasedExampleGen"].caching_options.enable_cache
    assert tasks["Transform"].caching_options.enable_cache


def test_a_vertex_schedule_carries_the_spec_its_root_and_a_five_field_cron(api, package):
    from google.auth.credentials import AnonymousCredentials

    name = schedule.schedule_vertex(
        package,
        "TZ=Europe/Paris 0 3 * * *",
        "daily",
        "p",
        "europe-west4",
        credentials=AnonymousCredentials(),
        api_endpoint=_host(api),
    )
    assert name == "projects/p/locations/r/schedules/7"
    ((method, path, body),) = api.requests
    assert (method, path) == ("POST", "/v1/projects/p/locations/europe-west4/schedules")
    assert body["cron"] == "TZ=Europe/Paris 0 3 * * *" and body["maxConcurrentRunCount"] == "1"
    job = body["createPipelineJobRequest"]["pipelineJob"]
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/pipeline-root/artifacts"
    assert _proto(job["pipelineSpec"]).root == _proto(yaml.safe_load(open(package))).root
    tasks = _proto(job["pipelineSpec"]).root.dag.tasks
    assert not tasks[run_plan.TASK].caching_options.enable_cache
    assert tasks["ProductionModel"].caching_options.enable_cache


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


def test_missing_auth_is_named_and_nothing_is_created(api, package, capsys):
    api.status = 401
    code = cli.main(["schedule", "--host", _host(api), "--pipeline", package])
    assert code == 2
    assert "authentication is missing" in capsys.readouterr().err
    assert all(method == "GET" for method, _, _ in api.requests)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: schedule.schedule_kfp("http://127.0.0.1:9", p, "3 * * *", "e", "j"), "5 fields"),
        (
            lambda p: schedule.schedule_vertex(p, "0 0 3 * * *", "d", "p", "r"),
            "5 fields for Vertex",
        ),
        (
            lambda p: schedule.schedule_kfp(
                "http://127.0.0.1:9", p + ".none", "0 3 * * *", "e", "j"
            ),
            "does not exist",
        ),
    ],
)
def test_bad_cron_and_missing_package_are_refused_before_any_request(package, call, message):
    with pytest.raises(schedule.ScheduleError, match=message):
        call(package)


def test_a_package_without_pipeline_root_is_refused(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("pipelineInfo: {name: test}\nroot: {}\n")
    with pytest.raises(schedule.ScheduleError, match="names no pipeline root"):
        schedule.schedule_kfp("http://127.0.0.1:9", str(old), "0 3 * * *", "e", "j")


def test_each_backend_names_what_it_needs(package, capsys):
    assert cli.main(["schedule", "--pipeline", package]) == 2
    assert "needs --host" in capsys.readouterr().err
    assert cli.main(["schedule", "--backend", "vertex", "--pipeline", package]) == 2
    assert "needs --project and --region" in capsys.readouterr().err
