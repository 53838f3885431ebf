"""Deployment settings: the backend a compiled pipeline is for, and what each task asks for.

A compiled spec is complete by itself: its pipeline root, every task's CPU and memory, the
Trainer's accelerators, how many comparison branches run at once. These settings say so; the
``compile`` command's flags are generated from them (``pipeline/cli/options.py``), as the
stages' are.

Backends (``target``):

- ``kfp``: open-source Kubeflow Pipelines 2.x. Its driver turns a task's resources into the
  pod's requests and limits, the accelerator *type* being the Kubernetes resource name the
  GPUs are exposed as (``nvidia.com/gpu``; kubeflow/pipelines
  ``backend/src/v2/driver/driver.go``, ``initPodSpecPatch``).
- ``vertex``: Vertex AI Pipelines, whose accelerator types are its ``AcceleratorType`` enum
  names (``NVIDIA_TESLA_T4``, ``NVIDIA_L4`` ...; google-cloud-aiplatform).

Per-stage defaults (``STAGE_RESOURCES``) are sized from ``benchmarks/pipeline_scale.py`` at
1,000,000 rows x 64 features on 2 CPUs (peak resident memory of the whole process tree, Beam
workers included): ExampleGen 2.8 GB, StatisticsGen 3.5 GB, Transform 3.3 GB, PairGen 2.7 GB,
Trainer 1.8 GB, RetrievalEvaluator 3.3 GB, GalleryIndex 3.6 GB (all 1,000,000 rows in an IVF
index; measured 2026-12-06); InputBaselines (the raw and classic baselines the evaluator
scored itself until then) is given the evaluator's size; every other step stays under
1.3 GB. Each default is about 1.5x that peak, and 2 CPUs for the Beam steps (their local
runs used two worker processes there). ``cpu`` and ``memory`` override them per stage (a
stage is a node id up to its first ``_``: ``Trainer`` covers every
``Trainer_<candidate>_s<seed>``).
"""

from __future__ import annotations

import dataclasses
import re

from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    at_least,
    boolean,
    each,
    one_of,
    positive,
    setting,
)

TARGETS = ("kfp", "vertex")
# (CPUs, memory in GB) per stage; see the module docstring for where the figures come from
STAGE_RESOURCES = {
    "RunPlan": (1.0, 2.0),
    "FileBasedExampleGen": (2.0, 4.0),
    "StatisticsGen": (2.0, 6.0),
    "SchemaGen": (1.0, 2.0),
    "ImportSchemaGen": (1.0, 2.0),
    "DataValidator": (1.0, 2.0),
    "ProductionModel": (1.0, 2.0),
    "Transform": (2.0, 5.0),
    "PairGen": (2.0, 4.0),
    "Tuner": (4.0, 8.0),
    "Trainer": (4.0, 8.0),
    "InputBaselines": (2.0, 6.0),
    "RetrievalEvaluator": (2.0, 6.0),
    "GalleryIndex": (2.0, 6.0),
    "Leaderboard": (1.0, 2.0),
    "Pusher": (1.0, 2.0),
}
# the GPU resource name on open-source Kubeflow when only a count is given
DEFAULT_KFP_ACCELERATOR = "nvidia.com/gpu"
# a Kubernetes extended resource name: <domain>/<name>
_K8S_RESOURCE = re.compile(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def vertex_accelerators() -> tuple[str, ...]:
    """Vertex AI's accelerator type names, from its own client library's enum."""
    from google.cloud.aiplatform_v1.types import AcceleratorType

    return tuple(a.name for a in AcceleratorType if a.value)


def stage_of(node_id: str) -> str:
    """The stage of a node id: ``Trainer_contrastive_s42`` -> ``Trainer``."""
    return node_id.split("_", 1)[0]


@dataclasses.dataclass(frozen=True)
class DeploymentSettings(StageSettings):
    """Where and how the compiled pipeline runs on a cluster (``compile``'s own flags)."""

    STAGE = "deployment"

    target: str = setting(
        "kfp",
        "backend the spec is compiled for: kfp (open-source Kubeflow Pipelines 2.x) or vertex "
        "(Vertex AI Pipelines)",
        one_of(*TARGETS),
    )
    allow_local_paths: bool = setting(
        False,
        "allow local paths for the data, pipeline root, serving folder and schema (every pod "
        "must then mount them at the same path)",
        boolean,
    )
    cpu: dict[str, float] = setting(
        {},
        "CPUs per stage, over the defaults (STAGE=N, repeatable, e.g. Trainer=8)",
        each(positive),
        metavar="STAGE=CPUS",
    )
    memory: dict[str, float] = setting(
        {},
        "memory in GB per stage, over the defaults (STAGE=GB, repeatable)",
        each(positive),
        metavar="STAGE=GB",
    )
    trainer_accelerator: str = setting(
        "",
        f"the Trainer's accelerator type: a Kubernetes resource name on kfp (default "
        f"{DEFAULT_KFP_ACCELERATOR} when --trainer-gpus is set), a Vertex AcceleratorType on "
        f"vertex (e.g. NVIDIA_TESLA_T4)",
    )
    trainer_gpus: int = setting(
        0, "accelerators per Trainer pod (MirroredStrategy spans them)", at_least(0)
    )
    trainer_workers: int = setting(
        1,
        "machines the Trainer trains on (MultiWorkerMirroredStrategy): >= 2 submits a TFJob "
        "(kfp, Kubeflow Training Operator) or a Vertex AI custom job (vertex), each replica "
        "with the Trainer's CPUs, memory and GPUs",
        at_least(1),
    )
    trainer_machine_type: str = setting(
        "n1-standard-8", "Vertex AI machine type of each training replica (--trainer-workers)"
    )
    project: str = setting("", "Google Cloud project of Vertex AI training jobs")
    region: str = setting("", "Vertex AI region of training jobs (e.g. europe-west4)")
    max_parallel_branches: int = setting(
        4,
        "comparison branches (Tuner/Trainer/evaluator) that may run at once (0: no bound)",
        at_least(0),
    )

    def _checks(self) -> list[str]:
        out = []
        unknown = sorted((set(self.cpu) | set(self.memory)) - set(STAGE_RESOURCES))
        if unknown:
            out.append(
                f"unknown stage(s) {unknown} in cpu/memory; stages: {sorted(STAGE_RESOURCES)}"
            )
        if self.trainer_accelerator and not self.trainer_gpus:
            out.append(
                f"trainer_accelerator {self.trainer_accelerator!r} needs --trainer-gpus N (N >= 1)"
            )
        accelerator = self.accelerator_type()
        if self.target == "kfp" and accelerator and not _K8S_RESOURCE.match(accelerator):
            out.append(
                f"trainer_accelerator {accelerator!r} is not a Kubernetes resource name "
                f"(e.g. {DEFAULT_KFP_ACCELERATOR}, amd.com/gpu), which open-source Kubeflow "
                f"puts in the pod's limits"
            )
        if self.target == "vertex" and self.trainer_gpus and not self.trainer_accelerator:
            out.append(
                "--trainer-gpus on vertex needs --trainer-accelerator (e.g. NVIDIA_TESLA_T4)"
            )
        if self.target == "vertex" and accelerator and accelerator not in vertex_accelerators():
            out.append(
                f"trainer_accelerator {accelerator!r} is not a Vertex AI accelerator type; "
                f"one of {', '.join(vertex_accelerators())}"
            )
        if (
            self.target == "vertex"
            and self.trainer_workers > 1
            and not (self.project and self.region)
        ):
            out.append("--trainer-workers on vertex needs --project and --region (its custom job)")
        return out

    def accelerator_type(self) -> str:
        """The Trainer's accelerator type ('' without GPUs)."""
        if not self.trainer_gpus:
            return ""
        if self.trainer_accelerator:
            return self.trainer_accelerator
        return DEFAULT_KFP_ACCELERATOR if self.target == "kfp" else ""

    def resources(self, stage: str) -> tuple[float, float]:
        """``(CPUs, memory GB)`` of ``stage``: the override, else the default."""
        cpu, memory = STAGE_RESOURCES[stage]
        return self.cpu.get(stage, cpu), self.memory.get(stage, memory)
