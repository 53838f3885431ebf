"""Losses by registered name: what each consumes, its parameters, and how to build it.

A loss is chosen by name from the pipeline config, never by import path from user input.
Each loss declares itself with ``declare.register`` on its class in its family's module; this
module imports the families and looks them up. ``validate`` refuses unknown names and bad
parameters, listing the valid choices, before any training starts.

Losses of other installed packages join through the ``tfx_metric_learning.losses`` entry-point
group: each entry names a module whose import registers losses with ``declare.register``
(``[project.entry-points."tfx_metric_learning.losses"] my_losses = "my_pkg.losses"``). They
are imported with this module, so the CLI, the Trainer and PairGen (on Kubeflow too, where
the package is in the image) know them by name like the built-in ones. A module that fails to
import is an error naming the entry point, not a loss silently missing.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

# Importing the family modules registers their losses.
from tfx_metric_learning.trainer_module.losses import classification, pair, proxy, ranking, triplet  # noqa: F401
from tfx_metric_learning.trainer_module.losses.declare import (
    INPUT_MODES,
    REGISTERED,
    LossSpec,
    Param,
)

__all__ = ["INPUT_MODES", "REGISTRY", "LossSpec", "Param", "build", "get_spec", "names"]

REGISTRY: dict[str, LossSpec] = REGISTERED
ENTRY_POINT_GROUP = "tfx_metric_learning.losses"


def load_plugins() -> list[str]:
    """Imports every module of the ``ENTRY_POINT_GROUP`` entry points; returns their names."""
    loaded = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as e:
            raise ImportError(
                f"the loss plugin {entry.name!r} ({entry.value}, entry-point group "
                f"{ENTRY_POINT_GROUP}) failed to import: {e}"
            ) from e
        loaded.append(entry.name)
    return loaded


load_plugins()


def names() -> list[str]:
    """Every registered loss name, sorted."""
    return sorted(REGISTRY)


def get_spec(name: str) -> LossSpec:
    """The spec registered under ``name``; an error listing the valid names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(names())}") from None


def validate(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Checks ``name`` and ``params``; returns the full parameter dict (defaults filled in)."""
    spec = get_spec(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        valid = ", ".join(sorted(spec.params)) or "none"
        raise ValueError(f"loss {name!r} has no parameter {unknown[0]!r}; valid: {valid}")
    full = spec.defaults()
    full.update(params)
    for key, value in full.items():
        if isinstance(spec.params[key].default, float) and isinstance(value, int):
            value = full[key] = float(value) if not isinstance(value, bool) else value
        problem = spec.params[key].check(value)
        if problem:
            raise ValueError(f"loss {name!r} parameter {key!r} {problem}")
    return full


def build(
    name: str,
    params: dict[str, Any] | None = None,
    num_classes: int | None = None,
    embedding_dim: int | None = None,
) -> Any:
    """Builds the loss layer for ``name`` with validated ``params``.

    The constructor gets the facts of the model it declares (``num_classes``,
    ``embedding_dim``) besides its parameters.
    """
    spec = get_spec(name)
    full = validate(name, params)
    if spec.needs_num_classes and not (num_classes and num_classes >= 2):
        raise ValueError(
            f"loss {name!r} needs a class count >= 2 (from the label vocabulary), got {num_classes}"
        )
    context = {"num_classes": num_classes, "embedding_dim": embedding_dim}
    return spec.cls(**full, **{k: context[k] for k in spec.context})
