"""How a loss declares itself: ``@register(name)`` on its class, nothing else.

A loss is one class in one module of its family (``classification``, ``pair``, ``triplet``,
``ranking``, ``proxy``). ``@register`` reads everything else from the class:

- **family**: the module's name (``trainer_module.losses.triplet`` -> ``"triplet"``);
- **input**: the class attribute ``input_mode`` (inherited from the family's base class);
- **summary**: the first line of the class docstring;
- **parameters and defaults**: the keyword parameters of the constructor, followed up the
  base classes while a constructor passes ``**kwargs`` on (so ``MetricLoss``'s
  ``memory_size`` belongs to every loss that forwards its keywords, and to none that does
  not); ``num_classes`` and ``embedding_dim`` are not parameters but facts of the model the
  registry hands in (``CONTEXT``);
- **checks**: each parameter's check and one-line doc, from ``COMMON`` by the parameter's name
  or given to ``register`` for parameters only that loss has. A parameter without a check is an
  error when the module is imported, so no loss takes an unchecked value.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from tfx_metric_learning.core.stage_settings import (
    at_least,
    boolean,
    fraction,
    non_negative,
    one_of,
    positive,
)
from tfx_metric_learning.trainer_module.distances import DISTANCES
from tfx_metric_learning.trainer_module.losses.base import Loss

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
# Constructor arguments the registry fills from the model, never from the user.
CONTEXT = ("num_classes", "embedding_dim")


@dataclasses.dataclass(frozen=True)
class Check:
    """A parameter's check (returns an error message or None) and its one-line doc."""

    check: Callable[[Any], str | None]
    doc: str


# Checks of the parameters several losses share, by parameter name.
COMMON = {
    "margin": Check(non_negative, "margin m"),
    "distance": Check(one_of(*sorted(DISTANCES)), "l2, squared_l2 or cosine"),
    "temperature": Check(positive, "temperature T"),
    "memory_size": Check(at_least(0), "cross-batch memory size (XBM); 0 = off"),
    "similar_label": Check(one_of(0, 1), "target value that means 'similar'"),
    "label_smoothing": Check(fraction, "label smoothing eps"),
    "soft": Check(boolean, "softplus instead of the hinge"),
}


@dataclasses.dataclass(frozen=True)
class Param:
    """A loss parameter: its default (from the constructor), its check and doc."""

    default: Any
    check: Callable[[Any], str | None]
    doc: str


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss, as read from its class by ``register``."""

    name: str
    family: str
    input_mode: str
    summary: str
    params: dict[str, Param]
    cls: type
    context: tuple[str, ...]

    @property
    def needs_num_classes(self) -> bool:
        """Whether the loss is built with the class count (a head, proxies, centres)."""
        return "num_classes" in self.context

    def defaults(self) -> dict[str, Any]:
        """The parameter defaults."""
        return {k: p.default for k, p in self.params.items()}

    @property
    def pair_gen_mode(self) -> str:
        """The PairGen mode that produces this loss's input."""
        return PAIR_GEN_MODES[self.input_mode]


REGISTERED: dict[str, LossSpec] = {}


def constructor_parameters(cls: type) -> list[inspect.Parameter]:
    """The keyword parameters ``cls(...)`` accepts, following ``**kwargs`` up the bases."""
    out: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        forwards = False
        for p in list(inspect.signature(klass.__init__).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                forwards = True
            elif p.kind is not p.VAR_POSITIONAL and p.name != "name":
                out.setdefault(p.name, p)
        if not forwards or klass is Loss:
            break
    return list(out.values())


def register(name: str, **checks: Check) -> Callable[[type], type]:
    """Class decorator: registers the loss under ``name`` (see the module doc).

    ``checks`` are the checks of parameters not in ``COMMON``. Raises ``TypeError`` at import
    for a parameter without a default or a check, a check for no parameter, an unknown input
    mode, or a name registered twice.
    """

    def decorate(cls: type) -> type:
        params, context = {}, []
        for p in constructor_parameters(cls):
            if p.name in CONTEXT:
                context.append(p.name)
                continue
            check = checks.get(p.name) or COMMON.get(p.name)
            if p.default is p.empty or check is None:
                raise TypeError(f"loss {name!r}: parameter {p.name!r} needs a default and a check")
            params[p.name] = Param(p.default, check.check, check.doc)
        unused = sorted(set(checks) - set(params))
        if unused:
            raise TypeError(f"loss {name!r}: checks for no parameter: {', '.join(unused)}")
        if cls.input_mode not in INPUT_MODES:
            raise TypeError(f"loss {name!r}: unknown input mode {cls.input_mode!r}")
        if name in REGISTERED:
            raise TypeError(f"loss {name!r} is registered twice")
        cls.registered_name = name
        REGISTERED[name] = LossSpec(
            name=name,
            family=cls.__module__.rsplit(".", 1)[-1],
            input_mode=cls.input_mode,
            summary=inspect.getdoc(cls).splitlines()[0].replace("``", ""),
            params=params,
            cls=cls,
            context=tuple(context),
        )
        return cls

    return decorate
