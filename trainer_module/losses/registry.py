"""Losses by registered name: what each consumes, its parameters, and how to build it.

A loss is chosen by name from the pipeline config, never by import path from user input.
``validate`` refuses unknown names and bad parameters, listing the valid choices, before any
training starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from trainer_module.distances import DISTANCES
from trainer_module.stage_settings import any_number as _any_number
from trainer_module.stage_settings import at_least as _count
from trainer_module.stage_settings import boolean as _bool
from trainer_module.stage_settings import fraction as _fraction
from trainer_module.stage_settings import non_negative as _non_negative
from trainer_module.stage_settings import one_of as _one_of
from trainer_module.stage_settings import positive as _positive

# What a loss consumes, and so what the pair/triplet construction step must produce.
INPUT_MODES = ("classification", "labelled", "pairs", "triplets", "triplets_k")
# The PairGen mode that feeds each input mode.
PAIR_GEN_MODES = {
    "classification": "none",
    "labelled": "none",
    "pairs": "pairs",
    "triplets": "triplets",
    "triplets_k": "triplets_k",
}


@dataclasses.dataclass(frozen=True)
class Param:
    """A loss parameter: its default, a check returning an error message or None, a doc."""

    default: Any
    check: Callable[[Any], str | None]
    doc: str


def _distance(default: str) -> Param:
    return Param(default, _one_of(*sorted(DISTANCES)), "l2, squared_l2 or cosine")


MARGIN = "margin m"
TEMPERATURE = "temperature T"
MEMORY = Param(0, _count(0), "cross-batch memory size (XBM); 0 = off")
SIMILAR = Param(1, _one_of(0, 1), "target value that means 'similar'")
SMOOTHING = Param(0.0, _fraction, "label smoothing eps")


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

    @property
    def pair_gen_mode(self) -> str:
        """The PairGen mode that produces this loss's input."""
        return PAIR_GEN_MODES[self.input_mode]


def _lazy(module: str, attr: str, **fixed: Any) -> Callable[..., Any]:
    """A factory importing ``trainer_module.losses.<module>.<attr>`` only when built."""

    def factory(params: dict[str, Any], num_classes: int | None, embedding_dim: int | None):
        import importlib

        target = getattr(importlib.import_module(f"trainer_module.losses.{module}"), attr)
        kwargs = dict(params) | fixed
        kwargs.pop("num_negatives", None)  # a data parameter, read by PairGen
        if "memory_size" in kwargs or attr in ("ProxyAnchorLoss", "ArcFaceLoss"):
            kwargs["embedding_dim"] = embedding_dim
        if attr in _CLASS_COUNTED:
            kwargs["num_classes"] = num_classes
        return target(**kwargs)

    return factory


_CLASS_COUNTED = {
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "CategoricalHinge",
    "KLDivergence",
    "Poisson",
    "ProxyAnchorLoss",
    "ArcFaceLoss",
}


def _spec(name, family, mode, summary, params, factory, classes=False) -> LossSpec:
    return LossSpec(name, family, mode, summary, params, factory, classes)


_SPECS = [
    # classification family: a class head on the embedding
    _spec(
        "categorical_crossentropy",
        "classification",
        "classification",
        "softmax cross-entropy against one-hot (optionally smoothed) targets",
        {"label_smoothing": SMOOTHING},
        _lazy("classification", "CategoricalCrossentropy"),
        True,
    ),
    _spec(
        "sparse_categorical_crossentropy",
        "classification",
        "classification",
        "softmax cross-entropy against integer class ids",
        {},
        _lazy("classification", "SparseCategoricalCrossentropy"),
        True,
    ),
    _spec(
        "categorical_hinge",
        "classification",
        "classification",
        "max(0, 1 + max_{c!=y} z_c - z_y) on the logits",
        {},
        _lazy("classification", "CategoricalHinge"),
        True,
    ),
    _spec(
        "kl_divergence",
        "classification",
        "classification",
        "KL(targets || softmax(logits))",
        {"label_smoothing": SMOOTHING},
        _lazy("classification", "KLDivergence"),
        True,
    ),
    _spec(
        "poisson",
        "classification",
        "classification",
        "mean_c (p_c - q_c log p_c) on the softmax rates",
        {"label_smoothing": SMOOTHING},
        _lazy("classification", "Poisson"),
        True,
    ),
    # pair family: offline (left, right, similar) pairs
    _spec(
        "binary_crossentropy",
        "pair",
        "pairs",
        "BCE(t, sigmoid(w cos + b)), learned scale w and bias b",
        {
            "scale": Param(10.0, _positive, "initial scale w"),
            "bias": Param(-5.0, _any_number, "initial bias b"),
            "similar_label": SIMILAR,
        },
        _lazy("pair", "BinaryCrossentropyPairLoss"),
    ),
    _spec(
        "contrastive",
        "pair",
        "pairs",
        "factor * [t D^2 + (1-t) max(0, m-D)^2] (Hadsell et al. 2006)",
        {
            "margin": Param(1.0, _non_negative, MARGIN),
            "distance": _distance("l2"),
            "factor": Param(0.5, _positive, "0.5 as in the paper, 1 without"),
            "similar_label": SIMILAR,
        },
        _lazy("pair", "ContrastiveLoss"),
    ),
    _spec(
        "hinge",
        "pair",
        "pairs",
        "max(0, 1 - t' cos), t' = +-1",
        {"similar_label": SIMILAR},
        _lazy("pair", "hinge"),
    ),
    _spec(
        "squared_hinge",
        "pair",
        "pairs",
        "max(0, 1 - t' cos)^2",
        {"similar_label": SIMILAR},
        _lazy("pair", "squared_hinge"),
    ),
    _spec(
        "mean_squared_error",
        "pair",
        "pairs",
        "(t - (1+cos)/2)^2",
        {"similar_label": SIMILAR},
        _lazy("pair", "mean_squared_error"),
    ),
    _spec(
        "mean_absolute_error",
        "pair",
        "pairs",
        "|t - (1+cos)/2|",
        {"similar_label": SIMILAR},
        _lazy("pair", "mean_absolute_error"),
    ),
    _spec(
        "huber",
        "pair",
        "pairs",
        "Huber(t - (1+cos)/2, delta)",
        {"delta": Param(1.0, _positive, "Huber delta"), "similar_label": SIMILAR},
        _lazy("pair", "huber"),
    ),
    _spec(
        "log_cosh",
        "pair",
        "pairs",
        "log cosh(t - (1+cos)/2)",
        {"similar_label": SIMILAR},
        _lazy("pair", "log_cosh"),
    ),
    _spec(
        "cosine_similarity",
        "pair",
        "pairs",
        "-t' cos, t' = +-1",
        {"similar_label": SIMILAR},
        _lazy("pair", "cosine_similarity"),
    ),
    # triplet family
    _spec(
        "triplet",
        "triplet",
        "triplets",
        "max(0, d(a,p) - d(a,n) + m) on offline triplets (FaceNet form with squared_l2)",
        {"margin": Param(0.2, _non_negative, MARGIN), "distance": _distance("squared_l2")},
        _lazy("triplet", "TripletLoss"),
    ),
    _spec(
        "triplet_k_negatives",
        "triplet",
        "triplets_k",
        "max(0, d(a,p) - min_k d(a,n_k) + m) over K offline negatives per anchor",
        {
            "margin": Param(0.2, _non_negative, MARGIN),
            "distance": _distance("squared_l2"),
            "num_negatives": Param(5, _count(1), "K negatives per anchor (PairGen)"),
        },
        _lazy("triplet", "TripletKNegativesLoss"),
    ),
    _spec(
        "triplet_semihard",
        "triplet",
        "labelled",
        "online semi-hard negative mining over the global batch (FaceNet)",
        {
            "margin": Param(1.0, _non_negative, MARGIN),
            "distance": _distance("l2"),
            "fallback": Param("hardest", _one_of("hardest", "easiest"), "when no semi-hard"),
            "memory_size": MEMORY,
        },
        _lazy("triplet", "TripletSemiHardLoss"),
    ),
    _spec(
        "triplet_hard",
        "triplet",
        "labelled",
        "batch-hard: hardest positive and hardest negative per anchor (Hermans et al.)",
        {
            "margin": Param(1.0, _non_negative, MARGIN),
            "distance": _distance("l2"),
            "soft": Param(False, _bool, "softplus instead of the hinge"),
            "memory_size": MEMORY,
        },
        _lazy("triplet", "TripletHardLoss"),
    ),
    _spec(
        "triplet_all",
        "triplet",
        "labelled",
        "every valid triplet of the batch, averaged over the non-zero ones",
        {
            "margin": Param(1.0, _non_negative, MARGIN),
            "distance": _distance("l2"),
            "memory_size": MEMORY,
        },
        _lazy("triplet", "TripletAllLoss"),
    ),
    # ranking and modern losses
    _spec(
        "pairwise_ranking",
        "ranking",
        "triplets",
        "RankNet log(1 + exp(-(s(a,p) - s(a,n)) / T)) on offline triplets",
        {"distance": _distance("cosine"), "temperature": Param(1.0, _positive, TEMPERATURE)},
        _lazy("triplet", "PairwiseRankingLoss"),
    ),
    _spec(
        "npairs",
        "ranking",
        "labelled",
        "multi-class N-pair loss (Sohn 2016), T = 1",
        {"temperature": Param(1.0, _positive, TEMPERATURE), "memory_size": MEMORY},
        _lazy("modern", "NPairsLoss", name="npairs"),
    ),
    _spec(
        "infonce",
        "ranking",
        "labelled",
        "InfoNCE: the N-pair loss with a temperature (van den Oord et al. 2018)",
        {"temperature": Param(0.1, _positive, TEMPERATURE), "memory_size": MEMORY},
        _lazy("modern", "NPairsLoss", name="infonce"),
    ),
    _spec(
        "supcon",
        "ranking",
        "labelled",
        "supervised contrastive loss (Khosla et al. 2020)",
        {"temperature": Param(0.1, _positive, TEMPERATURE), "memory_size": MEMORY},
        _lazy("modern", "SupConLoss"),
    ),
    _spec(
        "multi_similarity",
        "ranking",
        "labelled",
        "multi-similarity loss with its pair mining (Wang et al. 2019)",
        {
            "alpha": Param(2.0, _positive, "positive scale"),
            "beta": Param(50.0, _positive, "negative scale"),
            "base": Param(0.5, _any_number, "lambda"),
            "epsilon": Param(0.1, _non_negative, "mining margin"),
            "memory_size": MEMORY,
        },
        _lazy("modern", "MultiSimilarityLoss"),
    ),
    _spec(
        "circle",
        "ranking",
        "labelled",
        "circle loss (Sun et al. 2020)",
        {
            "m": Param(0.4, _non_negative, "relaxation margin"),
            "gamma": Param(80.0, _positive, "scale"),
            "memory_size": MEMORY,
        },
        _lazy("modern", "CircleLoss"),
    ),
    _spec(
        "lifted_structure",
        "ranking",
        "labelled",
        "lifted structured loss (Oh Song et al. 2016)",
        {"margin": Param(1.0, _non_negative, MARGIN), "distance": _distance("l2")},
        _lazy("modern", "LiftedStructureLoss"),
    ),
    _spec(
        "soft_nn",
        "ranking",
        "labelled",
        "soft nearest neighbour loss (Frosst et al. 2019)",
        {
            "temperature": Param(0.1, _positive, TEMPERATURE),
            "distance": _distance("squared_l2"),
            "memory_size": MEMORY,
        },
        _lazy("modern", "SoftNearestNeighborLoss"),
    ),
    _spec(
        "proxy_anchor",
        "proxy",
        "labelled",
        "Proxy-Anchor loss with one learned proxy per class (Kim et al. 2020)",
        {"alpha": Param(32.0, _positive, "scale"), "delta": Param(0.1, _non_negative, "margin")},
        _lazy("modern", "ProxyAnchorLoss"),
        True,
    ),
    _spec(
        "arcface",
        "proxy",
        "labelled",
        "additive angular margin softmax with learned class centres (Deng et al. 2019)",
        {"scale": Param(64.0, _positive, "s"), "margin": Param(0.5, _non_negative, "m")},
        _lazy("modern", "ArcFaceLoss"),
        True,
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
    """Builds the loss layer for ``name`` with validated ``params``."""
    spec = get_spec(name)
    full = validate(name, params)
    if spec.needs_num_classes and not (num_classes and num_classes >= 2):
        raise ValueError(
            f"loss {name!r} needs a class count >= 2 (from the label vocabulary), got {num_classes}"
        )
    return spec.factory(full, num_classes, embedding_dim)
