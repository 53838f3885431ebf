"""Losses by registered name: what each consumes, its parameters, and how to build it.

A loss is chosen by name from the pipeline config, never by import path from user input.
``validate`` refuses unknown names and bad parameters before any training starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from trainer_module.distances import DISTANCES

# What a loss consumes, and so what the pair/triplet construction step must produce:
#   "labelled": rows of (features, label) shuffled into batches (online mining, classification)
#   "triplets": offline (anchor, positive, negative) triplets
INPUT_MODES = ("labelled", "triplets")


@dataclasses.dataclass(frozen=True)
class Param:
    """A loss parameter: its default and a check returning an error message or None."""

    default: Any
    check: Callable[[Any], str | None]
    doc: str


def _positive(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and v > 0 else f"must be a number > 0, got {v!r}"


def _non_negative(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and v >= 0 else f"must be a number >= 0, got {v!r}"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"

    return check


_DISTANCE = _one_of(*sorted(DISTANCES))


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss."""

    name: str
    family: str
    input_mode: str
    summary: str
    params: dict[str, Param]
    factory: Callable[..., Any]
    needs_num_classes: bool = False

    def defaults(self) -> dict[str, Any]:
        """The parameter defaults."""
        return {k: p.default for k, p in self.params.items()}


def _triplet(**kw: Any) -> Any:
    from trainer_module.losses.triplet import TripletLoss

    return TripletLoss(**kw)


def _triplet_semihard(**kw: Any) -> Any:
    from trainer_module.losses.triplet import TripletSemiHardLoss

    return TripletSemiHardLoss(**kw)


def _sparse_cce() -> Any:
    from trainer_module.losses.classification import sparse_categorical_crossentropy

    return sparse_categorical_crossentropy()


_SPECS = [
    LossSpec(
        name="triplet",
        family="triplet",
        input_mode="triplets",
        summary="max(0, d(a,p) - d(a,n) + m) on offline triplets (FaceNet form with squared_l2)",
        params={
            "margin": Param(0.2, _non_negative, "margin m"),
            "distance": Param("squared_l2", _DISTANCE, "l2, squared_l2 or cosine"),
        },
        factory=_triplet,
    ),
    LossSpec(
        name="triplet_semihard",
        family="triplet",
        input_mode="labelled",
        summary="triplet loss with online semi-hard negative mining over the global batch",
        params={
            "margin": Param(1.0, _non_negative, "margin m"),
            "distance": Param("l2", _DISTANCE, "l2, squared_l2 or cosine"),
            "fallback": Param("hardest", _one_of("hardest", "easiest"), "when no semi-hard"),
        },
        factory=_triplet_semihard,
    ),
    LossSpec(
        name="sparse_categorical_crossentropy",
        family="classification",
        input_mode="labelled",
        summary="softmax cross-entropy of a class head on the embedding (integer labels)",
        params={},
        factory=_sparse_cce,
        needs_num_classes=True,
    ),
]

REGISTRY: dict[str, LossSpec] = {spec.name: spec for spec in _SPECS}


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
        problem = spec.params[key].check(value)
        if problem:
            raise ValueError(f"loss {name!r} parameter {key!r} {problem}")
    return full


def build(name: str, params: dict[str, Any] | None = None, num_classes: int | None = None) -> Any:
    """Builds the loss object for ``name`` with validated ``params``."""
    spec = get_spec(name)
    full = validate(name, params)
    if spec.needs_num_classes and not (num_classes and num_classes >= 2):
        raise ValueError(
            f"loss {name!r} needs a class count >= 2 (from the label vocabulary), got {num_classes}"
        )
    return spec.factory(**full)
