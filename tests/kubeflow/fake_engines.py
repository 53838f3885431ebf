"""Stand-ins for two distributed-training engines, behind their real client libraries' HTTP.

No Kubernetes cluster or Vertex AI exists here, so a local HTTP server answers the calls the
real clients make (``kubernetes.client.CustomObjectsApi`` for a TFJob; the Vertex AI
``JobServiceClient`` over REST for a ``CustomJob``), and plays the engine's part: it starts
every replica the job asks for as a local process running the job's own command, with the
``TF_CONFIG`` the engine would set, on loopback ports, and reports the job succeeded when
every replica exits 0, failed otherwise. What the replicas do is all TFX's and ours.

``TF_CONFIG`` as each engine sets it: the Kubeflow Training Operator names the cluster's
roles after the TFJob's replica types in lower case (``chief``, ``worker``) and each pod's
task as its type and index; Vertex AI gives worker pool 0 the role ``chief`` and worker pool
1 ``worker`` (Vertex AI's "distributed training" guide, ``TF_CONFIG``).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading

from tests.ports import free_ports


def run_replicas(roles: list[tuple[str, int, list[str]]], env: dict) -> tuple[bool, str]:
    """Runs ``(role, count, command)`` replicas as one cluster; ``(all exit 0, log tail)``."""
    replicas = [(role, i, command) for role, count, command in roles for i in range(count)]
    ports = iter(free_ports(len(replicas)))
    cluster: dict[str, list[str]] = {}
    for role, _, _ in replicas:
        cluster.setdefault(role, []).append(f"127.0.0.1:{next(ports)}")
    procs = []
    for role, index, command in replicas:
        config = {"cluster": cluster, "task": {"type": role, "index": index}}
        argv = [sys.executable if c == "python" else c for c in command]
        procs.append(
            subprocess.Popen(
                argv,
                env=dict(env, TF_CONFIG=json.dumps(config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs, ok = [], True
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        logs.append(out)
        ok = ok and proc.returncode == 0
    return ok, "\n".join(log[-3000:] for log in logs)


class _Server(http.server.ThreadingHTTPServer):
    """Jobs by name; ``jobs[name] = {"body", "status", "log"}``."""

    def __init__(self, handler, env):
        super().__init__(("127.0.0.1", 0), handler)
        self.jobs: dict[str, dict] = {}
        self.env = env
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A JSON API's handler: ``_body`` reads a request, ``_send`` answers."""

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def log_message(self, *args):
        pass


# --- the Kubeflow Training Operator behind the Kubernetes API --------------------------------

_TFJOBS = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([^/]+)/tfjobs(?:/([^/?]+))?")


class _KubernetesApi(JsonHandler):
    def do_POST(self):  # noqa: N802
        m = _TFJOBS.match(self.path)
        if not m:
            return self._send(404, {"kind": "Status", "code": 404})
        body = self._body()
        name = body["metadata"]["name"]
        with self.server.lock:
            if name in self.server.jobs:
                return self._send(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
            job = {"body": body, "status": {"conditions": [{"type": "Created", "status": "True"}]}}
            self.server.jobs[name] = job
        threading.Thread(target=self._operate, args=(job,), daemon=True).start()
        return self._send(201, body)

    def do_GET(self):  # noqa: N802
        m = _TFJOBS.match(self.path)
        job = self.server.jobs.get(m.group(2)) if m and m.group(2) else None
        if job is None:
            return self._send(404, {"kind": "Status", "code": 404})
        return self._send(200, {**job["body"], "status": job["status"]})

    def _operate(self, job):
        roles = []
        for kind, spec in job["body"]["spec"]["tfReplicaSpecs"].items():
            (container,) = spec["template"]["spec"]["containers"]
            roles.append((kind.lower(), spec["replicas"], container["command"]))
        env = dict(self.server.env)
        for spec in job["body"]["spec"]["tfReplicaSpecs"].values():
            for var in spec["template"]["spec"]["containers"][0].get("env", []):
                env[var["name"]] = var["value"]
        ok, log = run_replicas(roles, env)
        job["log"] = log
        kind = "Succeeded" if ok else "Failed"
        job["status"] = {"conditions": [{"type": kind, "status": "True", "message": log[-300:]}]}


def kubernetes(env: dict) -> _Server:
    """A Kubernetes API with the Training Operator's TFJobs, started."""
    return _Server(_KubernetesApi, env).start()


def kubeconfig(path: str, server: _Server) -> str:
    """A kubeconfig file naming ``server`` (no authentication); its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server.url}}],
        "users": [{"name": "local", "user": {}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
        "current-context": "local",
    }
    with open(path, "w") as f:
        json.dump(config, f)
    return path


# --- Vertex AI custom jobs ---------------------------------------------------------------------

_CUSTOM_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/customJobs(?:/([^/?]+))?")


class _VertexApi(JsonHandler):
    def do_POST(self):  # noqa: N802
        m = _CUSTOM_JOBS.match(self.path.split("?")[0])
        if not m:
            return self._send(404, {})
        body = self._body()
        name = f"{m.group(1)}/customJobs/{len(self.server.jobs) + 1}"
        job = {"body": {**body, "name": name, "state": "JOB_STATE_PENDING"}}
        self.server.jobs[name] = job
        threading.Thread(target=self._operate, args=(job,), daemon=True).start()
        return self._send(200, job["body"])

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0].removeprefix("/v1/")
        job = self.server.jobs.get(path)
        if job is None:
            return self._send(404, {})
        return self._send(200, job["body"])

    def _operate(self, job):
        pools = job["body"]["jobSpec"]["workerPoolSpecs"]
        roles = [
            (
                "chief" if i == 0 else "worker",
                int(pool["replicaCount"]),
                pool["containerSpec"]["command"],
            )
            for i, pool in enumerate(pools)
        ]
        ok, log = run_replicas(roles, dict(self.server.env))
        job["log"] = log
        job["body"] = {**job["body"], "state": "JOB_STATE_SUCCEEDED" if ok else "JOB_STATE_FAILED"}


def vertex(env: dict) -> _Server:
    """A Vertex AI endpoint with custom jobs, started."""
    return _Server(_VertexApi, env).start()


def env_without_tf_config() -> dict:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return env
