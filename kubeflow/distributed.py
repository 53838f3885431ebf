"""Training across machines on an existing engine: a TFJob on Kubeflow, a custom job on Vertex.

With ``compile --trainer-workers N`` (N >= 2) the Trainer task does not train itself: its
executor (``Executor``) submits the training to the backend's own distributed-training
engine, waits for it, and fails when it fails. Every replica runs TFX's
``tfx.scripts.run_executor`` with TFX's Trainer executor and this Trainer's inputs, outputs
and properties, in the pipeline image; the engine sets ``TF_CONFIG``, ``run_fn`` then trains
with ``MultiWorkerMirroredStrategy`` and only the chief writes (``trainer_module/run.py``).

- ``kfp``: a ``TFJob`` of the Kubeflow Training Operator (``kubeflow.org/v1``), one ``Chief``
  and N-1 ``Worker`` replicas with the Trainer's CPUs, memory and GPUs each (``tfjob``),
  created in the Trainer pod's namespace with the Kubernetes API and watched until its
  ``Succeeded`` or ``Failed`` condition (``run_tfjob``). The Training Operator must be
  installed, and the pipeline's service account allowed to create and get ``tfjobs``.
- ``vertex``: TFX's own ``google_cloud_ai_platform`` Trainer extension (a Vertex AI
  ``CustomJob``), with worker pool 0 (the chief, one replica) and worker pool 1 (N-1
  replicas), each with the Trainer's accelerators.

The replica command is the one TFX's extension builds
(``AbstractJobClient.generate_container_command``), so both engines run the same thing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import standard_component_specs
from tfx.utils import json_utils, name_utils

# execution property of the Trainer task (added by kubeflow/runner.py): a ``Plan`` as JSON
PLAN_KEY = "distributed_training"
TFX_TRAINER_EXECUTOR = "tfx.components.trainer.executor.GenericExecutor"
TFJOB_GROUP, TFJOB_VERSION, TFJOB_PLURAL = "kubeflow.org", "v1", "tfjobs"
POLL_SECONDS = 30.0  # between two reads of a TFJob's status
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def extension_keys() -> tuple[str, ...]:
    """The custom_config keys of TFX's Vertex extension; run_fn leaves them out of the settings.

    Imported when called: TFX's extension imports Google Cloud's client libraries (seconds of
    start-up no local run needs).
    """
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor

    return (
        executor.TRAINING_ARGS_KEY,
        executor.JOB_ID_KEY,
        executor.LABELS_KEY,
        executor.ENABLE_UCAIP_KEY,
        executor.UCAIP_REGION_KEY,
        constants.ENABLE_VERTEX_KEY,
        constants.VERTEX_REGION_KEY,
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the Trainer's training is spread: the engine, the replicas and what each gets."""

    backend: str  # kfp (TFJob) or vertex (CustomJob)
    workers: int  # replicas in all, the chief included
    image: str
    cpu: float
    memory_gb: float
    accelerator: str = ""  # a Kubernetes resource name on kfp, a Vertex type on vertex
    accelerators: int = 0  # per replica
    project: str = ""  # vertex
    region: str = ""  # vertex
    machine_type: str = "n1-standard-8"  # vertex

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls(**json.loads(text))


def replica_command(input_dict, output_dict, exec_properties) -> list[str]:
    """What every replica runs: TFX's Trainer executor through ``tfx.scripts.run_executor``."""
    from tfx.extensions.google_cloud_ai_platform import training_clients

    # the command builder of TFX's extension (it needs no client)
    build = training_clients.AbstractJobClient.generate_container_command
    return build(None, input_dict, output_dict, exec_properties, TFX_TRAINER_EXECUTOR)


def tfjob(name: str, namespace: str, plan: Plan, command: list[str]) -> dict[str, Any]:
    """The TFJob manifest: one Chief and ``plan.workers - 1`` Workers running ``command``."""
    limits: dict[str, Any] = {"cpu": str(plan.cpu), "memory": f"{plan.memory_gb}G"}
    if plan.accelerators:
        limits[plan.accelerator] = plan.accelerators

    def replicas(count: int) -> dict[str, Any]:
        return {
            "replicas": count,
            "restartPolicy": "OnFailure",
            "template": {
                "spec": {
                    "containers": [
                        {
                            # the Training Operator finds the TensorFlow container by this name
                            "name": "tensorflow",
                            "image": plan.image,
                            "command": command,
                            "env": [{"name": "TF_USE_LEGACY_KERAS", "value": "1"}],
                            "resources": {"limits": limits, "requests": dict(limits)},
                        }
                    ]
                }
            },
        }

    specs = {"Chief": replicas(1)}
    if plan.workers > 1:
        specs["Worker"] = replicas(plan.workers - 1)
    return {
        "apiVersion": f"{TFJOB_GROUP}/{TFJOB_VERSION}",
        "kind": "TFJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "Running", "ttlSecondsAfterFinished": 7 * 24 * 3600},
            "tfReplicaSpecs": specs,
        },
    }


def job_state(tfjob_status: dict[str, Any]) -> str:
    """``Succeeded``, ``Failed`` or ``Running`` from a TFJob's status conditions."""
    for condition in tfjob_status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Succeeded", "Failed"):
            return condition["type"]
    return "Running"


def run_tfjob(api_client, manifest: dict[str, Any], poll_seconds: float = 30.0) -> dict:
    """Creates the TFJob ``manifest`` and waits for it; its final status.

    Raises ``RuntimeError`` naming the job when it fails. A job of that name that already
    exists (a retried Trainer task) is waited for rather than created again.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.CustomObjectsApi(api_client)
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    where = dict(group=TFJOB_GROUP, version=TFJOB_VERSION, namespace=namespace, plural=TFJOB_PLURAL)
    try:
        api.create_namespaced_custom_object(body=manifest, **where)
        logging.info("TFJob %s/%s created", namespace, name)
    except ApiException as e:
        if e.status != 409:  # 409: it exists, from an earlier attempt of this task
            raise RuntimeError(
                f"the Kubernetes API refused TFJob {namespace}/{name} (HTTP {e.status}): "
                f"{e.reason}; is the Kubeflow Training Operator installed, and may the "
                f"pipeline's service account create tfjobs.kubeflow.org?"
            ) from None
        logging.info("TFJob %s/%s exists (a retried task): waiting for it", namespace, name)
    while True:
        status = api.get_namespaced_custom_object(name=name, **where).get("status") or {}
        state = job_state(status)
        if state == "Succeeded":
            return status
        if state == "Failed":
            messages = [c.get("message", "") for c in status.get("conditions") or []]
            raise RuntimeError(f"TFJob {namespace}/{name} failed: {'; '.join(messages)}")
        time.sleep(poll_seconds)


def kubernetes_api_client():
    """The Kubernetes API client of this pod (in-cluster), else of ``KUBECONFIG``."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:  # read now: the client reads KUBECONFIG once, at import
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


def pod_namespace() -> str:
    """The namespace this pod runs in (``POD_NAMESPACE``, else the service account's)."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if os.path.exists(NAMESPACE_FILE):
        with open(NAMESPACE_FILE) as f:
            return f.read().strip()
    return "default"


def vertex_job_args(plan: Plan) -> dict[str, Any]:
    """``ai_platform_training_args`` of TFX's extension: the chief pool and the worker pool."""
    machine: dict[str, Any] = {"machine_type": plan.machine_type}
    if plan.accelerators:
        machine.update(accelerator_type=plan.accelerator, accelerator_count=plan.accelerators)
    pool = {"machine_spec": machine, "container_spec": {"image_uri": plan.image}}
    pools = [{**pool, "replica_count": 1}]
    if plan.workers > 1:
        pools.append({**pool, "replica_count": plan.workers - 1})
    return {"project": plan.project, "job_spec": {"worker_pool_specs": pools}}


class Executor(base_executor.BaseExecutor):
    """The Trainer's executor when its training runs on the backend's distributed engine."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        plan = Plan.from_json(exec_properties[PLAN_KEY])
        properties = {k: v for k, v in exec_properties.items() if k != PLAN_KEY}
        if plan.backend == "vertex":
            from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
            from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer

            custom_config = json_utils.loads(
                properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}"
            )
            custom_config.update(
                {
                    vertex_trainer.TRAINING_ARGS_KEY: vertex_job_args(plan),
                    vertex_constants.ENABLE_VERTEX_KEY: True,
                    vertex_constants.VERTEX_REGION_KEY: plan.region,
                }
            )
            properties[standard_component_specs.CUSTOM_CONFIG_KEY] = json_utils.dumps(custom_config)
            vertex_trainer.GenericExecutor(self._context).Do(input_dict, output_dict, properties)
            return
        command = replica_command(input_dict, output_dict, properties)
        name = _job_name(output_dict)
        manifest = tfjob(name, pod_namespace(), plan, command)
        logging.info("training on %d replicas: TFJob %s", plan.workers, name)
        run_tfjob(kubernetes_api_client(), manifest, poll_seconds=POLL_SECONDS)


def _job_name(output_dict) -> str:
    """A TFJob name from the model artifact's folder: the same on a retry of this task."""
    import hashlib

    uri = output_dict[standard_component_specs.MODEL_KEY][0].uri
    return "trainer-" + hashlib.sha256(uri.encode()).hexdigest()[:16]


EXECUTOR_PATH = name_utils.get_full_name(Executor)
