"""Scheduled retraining: a recurring run of a compiled pipeline on open-source KFP or Vertex AI.

Both take the file ``metric-learning compile`` wrote (the PipelineSpec YAML, or the PipelineJob
JSON) and schedule it with the backend's own client library:

- open-source Kubeflow Pipelines (``schedule_kfp``): ``kfp.Client.create_recurring_run``, in an
  experiment it creates or reuses, after a health check with a short timeout so an
  unreachable host or missing credentials fail fast, before anything is created;
- Vertex AI (``schedule_vertex``): ``aiplatform.PipelineJob(...).create_schedule``, Vertex's
  Scheduler API.

Either way the schedule carries the spec's pipeline root (a recurring run without one would
write to the open-source backend's MinIO default), runs one job at a time, does not catch up
on missed runs unless asked (``catch_up``; Vertex never backfills), and leaves caching as
compiled: submitting with ``enable_caching`` set would override every task's setting
(aiplatform ``PipelineJob``: "If set, the setting applies to all tasks in the pipeline"; KFP
likewise); caching forced on still runs ``RunPlan`` (it takes the run's id) and so still
reads each day's files; caching forced off recomputes everything.

Cron expressions are the standard five fields (minute hour day-of-month month day-of-week,
``0 3 * * *``); Vertex also takes a leading ``TZ=Area/City``; KFP also takes six fields
(seconds first, robfig/cron's format, which five fields are converted to).
"""

from __future__ import annotations

import json
import os
import re

import requests
import yaml

HEALTHZ = "/apis/v2beta1/healthz"
_TZ = re.compile(r"^(CRON_)?TZ=\S+\s+")


class ScheduleError(RuntimeError):
    """The schedule could not be created; the message says why and what to do."""


def pipeline_root_of(package_path: str) -> str:
    """The pipeline root compiled into the package (a PipelineSpec, or a PipelineJob's)."""
    if not os.path.exists(package_path):
        raise ScheduleError(f"compiled pipeline {package_path} does not exist; run compile first")
    with open(package_path) as f:
        text = f.read()
    try:
        loaded = json.loads(text) if package_path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ScheduleError(f"{package_path} is not a compiled pipeline: {e}") from None
    if not isinstance(loaded, dict):
        raise ScheduleError(f"{package_path} is not a compiled pipeline")
    spec = loaded.get("pipelineSpec", loaded)
    root = spec.get("defaultPipelineRoot")
    if not root:
        raise ScheduleError(
            f"{package_path} names no pipeline root (defaultPipelineRoot): compile it again with "
            f"this version, so every scheduled run writes under --pipeline-root"
        )
    return root


def kfp_cron(cron: str) -> str:
    """``cron`` in KFP's six-field form (seconds first); five fields get second 0."""
    fields = cron.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise ScheduleError(
        f"cron expression {cron!r} must have 5 fields (minute hour day-of-month month "
        f"day-of-week, e.g. '0 3 * * *') or KFP's 6 (seconds first)"
    )


def vertex_cron(cron: str) -> str:
    """``cron`` as Vertex takes it: five fields, optionally after ``TZ=Area/City``."""
    if len(_TZ.sub("", cron.strip()).split()) != 5:
        raise ScheduleError(
            f"cron expression {cron!r} must have 5 fields for Vertex AI (e.g. '0 3 * * *', "
            f"optionally 'TZ=Europe/Paris 0 3 * * *')"
        )
    return cron.strip()


def check_host(host: str, token: str | None = None, timeout: float = 5.0) -> None:
    """Raises ``ScheduleError`` unless ``host`` answers KFP's health check."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = host.rstrip("/") + HEALTHZ
    try:
        response = requests.get(url, headers=headers, timeout=timeout)
    except requests.RequestException as e:
        raise ScheduleError(
            f"cannot reach Kubeflow Pipelines at {host} ({type(e).__name__}); check --host "
            f"(e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
            f"svc/ml-pipeline-ui 8080:80`)"
        ) from None
    if response.status_code in (401, 403):
        raise ScheduleError(
            f"Kubeflow Pipelines at {host} refused the request (HTTP {response.status_code}): "
            f"authentication is missing or not allowed; pass --token or set "
            f"KF_PIPELINES_SA_TOKEN_PATH"
        )
    if response.status_code != 200:
        raise ScheduleError(
            f"{url} answered HTTP {response.status_code}; is {host} a Kubeflow Pipelines host?"
        )


def schedule_kfp(
    host: str,
    package_path: str,
    cron: str,
    experiment: str,
    job_name: str,
    namespace: str | None = None,
    token: str | None = None,
    catch_up: bool = False,
) -> str:
    """Creates (or reuses) ``experiment`` and a recurring run of the package; its id."""
    root = pipeline_root_of(package_path)
    expression = kfp_cron(cron)
    check_host(host, token)
    import kfp

    client = kfp.Client(host=host, namespace=namespace, existing_token=token)
    exp = client.create_experiment(experiment, namespace=namespace)
    run = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=job_name,
        cron_expression=expression,
        pipeline_package_path=package_path,
        pipeline_root=root,
        max_concurrency=1,
        no_catchup=not catch_up,
    )
    return run.recurring_run_id


def schedule_vertex(
    package_path: str,
    cron: str,
    display_name: str,
    project: str,
    region: str,
    service_account: str | None = None,
    credentials=None,
    api_endpoint: str | None = None,
) -> str:
    """Creates a Vertex AI schedule of the package; its resource name.

    ``credentials`` and ``api_endpoint`` default to the environment's (Application Default
    Credentials, the region's endpoint).
    """
    root = pipeline_root_of(package_path)
    expression = vertex_cron(cron)
    from google.cloud import aiplatform

    extra = {"api_endpoint": api_endpoint, "api_transport": "rest"} if api_endpoint else {}
    aiplatform.init(project=project, location=region, credentials=credentials, **extra)
    job = aiplatform.PipelineJob(
        display_name=display_name,
        template_path=package_path,
        pipeline_root=root,
        enable_caching=None,  # as compiled: see the module docstring
    )
    created = job.create_schedule(
        cron=expression,
        display_name=display_name,
        max_concurrent_run_count=1,
        service_account=service_account,
    )
    return created.resource_name
