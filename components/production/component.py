"""ProductionModel: a custom TFX component that says what is in production at the run's start.

No inputs: it reads the production record the Pusher keeps at the serving location
(``record.py``) and outputs a ``Model`` artifact with a copy of that model, or without one
when nothing usable is in production. The evaluator takes it as its baseline and, with
``--warm-start``, the Trainer as its base model. Its result depends on a file outside the
pipeline's artifacts, so no cache may replay an older reading: ``pipeline.ALWAYS_RUN`` names
it, the local runner switches caching off for it, and the Kubeflow compiler keys its cache on
the digest of the record (``kubeflow/run_plan.py``).
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.production import executor, spec


class ProductionModelSpec(ComponentSpec):
    """The serving location -> the production model (or an empty Model artifact)."""

    PARAMETERS = {spec.SERVING_DIR_KEY: ExecutionParameter(type=str)}
    INPUTS: dict = {}
    OUTPUTS = {spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ProductionModel(base_component.BaseComponent):
    """Reads the production record at ``serving_dir`` and outputs its model."""

    SPEC_CLASS = ProductionModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, serving_dir: str):
        super().__init__(
            spec=ProductionModelSpec(
                serving_dir=serving_dir,
                model=types.Channel(type=standard_artifacts.Model),
            )
        )
