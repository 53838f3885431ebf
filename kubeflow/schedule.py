"""Scheduled retraining: upload a compiled pipeline and create a recurring run on a KFP host.

The host is checked first, with a short timeout, so an unreachable host or missing
credentials fail fast with a clear message, before anything is created or written.
"""

from __future__ import annotations

import os

import requests

HEALTHZ = "/apis/v2beta1/healthz"


class ScheduleError(RuntimeError):
    """The schedule could not be created; the message says why and what to do."""


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


def schedule(
    host: str,
    package_path: str,
    cron: str,
    experiment: str,
    job_name: str,
    namespace: str | None = None,
    token: str | None = None,
) -> str:
    """Creates (or reuses) ``experiment`` and a recurring run of the compiled pipeline.

    ``package_path`` is the PipelineSpec YAML from ``metric-learning compile --output
    X.yaml``; ``cron`` is a 6-field KFP cron expression (seconds first). Returns the
    recurring run id.
    """
    if not os.path.exists(package_path):
        raise ScheduleError(f"compiled pipeline {package_path} does not exist; run compile first")
    if len(cron.split()) != 6:
        raise ScheduleError(
            f"cron expression {cron!r} must have 6 fields (seconds minutes hours "
            f"day-of-month month day-of-week), e.g. '0 0 3 * * *'"
        )
    check_host(host, token)
    import kfp

    client = kfp.Client(host=host, namespace=namespace, existing_token=token)
    exp = client.create_experiment(experiment, namespace=namespace)
    run = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=job_name,
        cron_expression=cron,
        pipeline_package_path=package_path,
    )
    return run.recurring_run_id
