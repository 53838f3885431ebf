"""``check_compiled_spec``: the backend rules this project's own compiled specs pass.

The rules, and the kubeflow/pipelines, TFX and KFP SDK files they come from, are listed in
``tfx_metric_learning/kubeflow/backend_rules.py``: the open-source Kubeflow Pipelines
backend's (``target="kfp"``) and Vertex AI's (``target="vertex"``). ``compile`` refuses a
spec that breaks them; this check is for a spec a team's own pipeline variant compiled (or
edited) another way.
"""

from __future__ import annotations

import json
from typing import Any


def load_spec(path: str) -> dict[str, Any]:
    """The PipelineSpec in ``path``: a job JSON (``pipelineSpec`` inside) or a spec YAML/JSON."""
    from tfx.dsl.io import fileio

    with fileio.open(path, "r") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        spec = yaml.safe_load(text)
    else:
        spec = json.loads(text)
    return spec.get("pipelineSpec", spec)


def check_compiled_spec(path: str, target: str = "kfp") -> dict[str, Any]:
    """Checks the spec in ``path`` for ``target`` (``kfp``, ``vertex`` or ``both``).

    Returns the PipelineSpec; raises ``AssertionError`` listing every broken rule.
    """
    from tfx_metric_learning.kubeflow import backend_rules

    targets = backend_rules.TARGETS if target == "both" else (target,)
    spec = load_spec(path)
    found = [f"{t}: {p}" for t in targets for p in backend_rules.problems_for(spec, t)]
    if found:
        raise AssertionError(f"{path} breaks backend rules:\n- " + "\n- ".join(found))
    return spec
