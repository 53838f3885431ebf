"""Contract checks for any registered loss (``check_loss``) and a NumPy reference comparison.

A loss joins the library with ``@register("name")`` on its class
(``tfx_metric_learning.trainer_module.losses.declare``); a team's own loss lives in its own
module, imported (or named in the ``tfx_metric_learning.losses`` entry-point group) before
use. ``check_loss(name)`` runs on it the contract every built-in loss passes:

1. **parameters are validated**: the defaults pass ``registry.validate``; every parameter
   refuses a value of the wrong type (``object()``), and every numeric one ``nan`` and
   ``inf``, with a ``ValueError`` naming the parameter;
2. **finite on degenerate batches**: value and gradients (with respect to the embeddings and
   the loss's own weights) are finite for one class, all classes distinct, a single row,
   duplicated embeddings and all-zero embeddings;
3. **invariant to batch order**: the loss of a permuted batch equals the loss of the batch
   (``atol``);
4. **replicas**: under ``MirroredStrategy`` with two CPU replicas the loss and gradients
   equal one device's on the same global batch (run in a fresh process, which can still
   split its CPU in two; ``replicas=False`` skips it).

The batch a loss gets follows its input mode (``losses/base.py``): labels and embeddings
``[B, D]`` (``labelled``), logits ``[B, C]`` (``classification``), ``[B, 2, D]`` with
similar/dissimilar targets (``pairs``), ``[B, 3, D]`` (``triplets``), ``[B, 2 + K, D]``
(``triplets_k``). Embeddings are unit vectors, as the encoder's outputs are.

``compare_to_reference(name, reference)`` checks the loss against a NumPy function its
author writes from the paper, on seeded random batches of the loss's input mode.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

D, C, B = 6, 8, 8  # embedding width, classes, batch rows of the checks
CASES = ("random", "one_class", "all_distinct", "single_row", "duplicated", "zero")


class LossContractError(AssertionError):
    """A loss broke its contract; the message lists every broken check with its case."""


@dataclasses.dataclass(frozen=True)
class Batch:
    """A loss's inputs as NumPy: ``labels`` ``[B]`` and ``y_pred`` of its input mode."""

    labels: np.ndarray
    y_pred: np.ndarray


def batch_for(spec: Any, params: dict[str, Any], case: str = "random", seed: int = 0) -> Batch:
    """The inputs of ``spec``'s input mode for a named case of ``CASES``."""
    rng = np.random.default_rng(seed)
    rows = 1 if case == "single_row" else B
    labels = {
        "one_class": np.zeros(rows, np.int64),
        "all_distinct": np.arange(rows, dtype=np.int64),
    }.get(case, rng.integers(0, C // 2, size=rows).astype(np.int64))
    if case == "random" and rows > 1:
        labels[:2] = [0, 1]

    def vectors(*shape):
        if case == "zero":
            return np.zeros((*shape, D), np.float32)
        if case == "duplicated":
            return np.broadcast_to(np.ones(D, np.float32) / math.sqrt(D), (*shape, D)).copy()
        x = rng.normal(size=(*shape, D))
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    mode = spec.input_mode
    if mode == "classification":
        head = np.random.default_rng(99).normal(size=(D, C)).astype(np.float32)
        return Batch(labels, (vectors(rows) @ head) * 3)
    if mode == "pairs":
        return Batch((np.arange(rows) % 2 == 0).astype(np.int64), vectors(rows, 2))
    if mode == "triplets":
        return Batch(labels, vectors(rows, 3))
    if mode == "triplets_k":
        return Batch(labels, vectors(rows, 2 + int(params["num_negatives"])))
    return Batch(labels, vectors(rows))


def _build(name: str, params: dict[str, Any]):
    from tfx_metric_learning.trainer_module.losses import registry

    return registry.build(name, params, num_classes=C, embedding_dim=D)


def value_and_gradients(loss: Any, batch: Batch) -> tuple[float, list[np.ndarray]]:
    """The loss on ``batch`` and its gradients (embeddings first, then the loss's weights)."""
    import tensorflow as tf

    y_pred = tf.Variable(batch.y_pred)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(batch.labels), y_pred)
    grads = tape.gradient(value, [y_pred, *loss.trainable_variables])
    return float(value), [
        tf.convert_to_tensor(g).numpy() if g is not None else np.zeros(1) for g in grads
    ]


def _parameter_problems(name: str, spec: Any, params: dict[str, Any]) -> list[str]:
    from tfx_metric_learning.core.stage_settings import is_number
    from tfx_metric_learning.trainer_module.losses import registry

    found = []
    try:
        registry.validate(name, params)
    except ValueError as e:
        return [f"parameters: the defaults and {params} are refused: {e}"]
    for key, param in spec.params.items():
        bad = [object()]
        if is_number(param.default) and not isinstance(param.default, bool):
            bad += [float("nan"), float("inf")]
        for value in bad:
            try:
                registry.validate(name, {**params, key: value})
            except ValueError as e:
                if key not in str(e):
                    found.append(f"parameters: refusing {key}={value!r} does not name it: {e}")
            except Exception as e:  # noqa: BLE001 - a check must answer, not crash
                found.append(f"parameters: checking {key}={value!r} raised {e!r}, not ValueError")
            else:
                found.append(f"parameters: {key}={value!r} is accepted")
    return found


def check_loss(
    name: str,
    params: dict[str, Any] | None = None,
    replicas: bool = True,
    atol: float = 1e-5,
) -> dict[str, float]:
    """Runs the contract of the module docstring on the registered loss ``name``.

    Returns the loss value per case; raises ``LossContractError`` listing every broken check.
    """
    from tfx_metric_learning.trainer_module.losses import registry

    spec = registry.get_spec(name)
    params = dict(params or {})
    full = spec.defaults() | params
    found = _parameter_problems(name, spec, params)
    values = {}
    if found:
        raise LossContractError(f"loss {name!r}:\n- " + "\n- ".join(found))
    for case in CASES:
        batch = batch_for(spec, full, case)
        try:
            value, grads = value_and_gradients(_build(name, params), batch)
        except Exception as e:  # noqa: BLE001 - reported with its case
            found.append(f"{case}: the loss raised {e!r}")
            continue
        values[case] = value
        if not math.isfinite(value):
            found.append(f"{case}: the loss is {value}")
        if not all(np.all(np.isfinite(g)) for g in grads):
            found.append(f"{case}: a gradient is not finite")
    found += _order_problems(name, spec, params, full, atol)
    if replicas and not found:
        found += check_replicas([name], {name: params}, atol)[name]
    if found:
        raise LossContractError(f"loss {name!r}:\n- " + "\n- ".join(found))
    return values


def _order_problems(name, spec, params, full, atol) -> list[str]:
    batch = batch_for(spec, full, "random", seed=1)
    order = np.random.default_rng(2).permutation(len(batch.labels))
    loss = _build(name, params)  # one layer: learned weights (proxies, centres) are shared
    first, _ = value_and_gradients(loss, batch)
    permuted, _ = value_and_gradients(loss, Batch(batch.labels[order], batch.y_pred[order]))
    if not abs(first - permuted) <= atol * max(1.0, abs(first)):
        return [f"batch order: {first} on the batch, {permuted} on it permuted"]
    return []


def run_replicas(requests: list[dict[str, Any]]) -> subprocess.CompletedProcess:
    """Runs ``replicas.py`` on ``requests`` in a fresh process (this one's ``sys.path``)."""
    env = dict(
        os.environ,
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
    )
    return subprocess.run(
        [sys.executable, "-m", "tfx_metric_learning.testing.replicas", json.dumps(requests)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def check_replicas(
    names: list[str], params: dict[str, dict[str, Any]] | None = None, atol: float = 1e-5
) -> dict[str, list[str]]:
    """Check 4 of the module docstring for many losses in one fresh process.

    ``params``: per loss name, its parameters. Returns, per name, the broken checks (empty
    when one device and two replicas agree).
    """
    from tfx_metric_learning.trainer_module.losses import registry

    params = params or {}
    requests = [
        {"name": n, "params": params.get(n, {}), "module": registry.get_spec(n).cls.__module__}
        for n in names
    ]
    proc = run_replicas(requests)
    if proc.returncode != 0:
        failure = f"replicas: the two-replica run failed:\n{proc.stderr[-3000:]}"
        return {n: [failure] for n in names}
    out = {}
    for r in json.loads(proc.stdout.strip().splitlines()[-1]):
        found = []
        if not r["loss_diff"] <= atol * max(1.0, abs(r["loss"])):
            found.append(f"replicas: loss {r['loss']} on one device, differs by {r['loss_diff']}")
        if not r["grad_diff"] <= atol * max(1.0, r["grad_norm"]):
            found.append(
                f"replicas: gradients differ by {r['grad_diff']} (largest {r['grad_norm']})"
            )
        out[r["name"]] = found
    return out


def compare_to_reference(
    name: str,
    reference: Callable[..., float],
    params: dict[str, Any] | None = None,
    seeds: tuple[int, ...] = (0, 1, 2),
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> list[tuple[float, float]]:
    """Compares loss ``name`` with ``reference(labels, y_pred, **params)`` on seeded batches.

    ``reference`` gets NumPy arrays of the loss's input mode (``batch_for``) and the full
    parameters (defaults filled in); if it has a ``layer`` parameter it also gets the built
    loss layer, to read learned weights such as proxies. Returns ``(ours, reference)`` per
    seed; raises ``LossContractError`` naming the first seed that differs.
    """
    from tfx_metric_learning.trainer_module.losses import registry

    spec = registry.get_spec(name)
    full = registry.validate(name, params)
    takes_layer = "layer" in inspect.signature(reference).parameters
    out = []
    for seed in seeds:
        batch = batch_for(spec, full, "random", seed)
        layer = _build(name, dict(params or {}))
        ours, _ = value_and_gradients(layer, batch)
        extra = {"layer": layer} if takes_layer else {}
        expected = float(reference(batch.labels, batch.y_pred, **full, **extra))
        if not abs(ours - expected) <= atol + rtol * abs(expected):
            raise LossContractError(
                f"loss {name!r}, seed {seed}: ours {ours}, reference {expected}"
            )
        out.append((ours, expected))
    return out
