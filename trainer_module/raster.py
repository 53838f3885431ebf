"""Raster layout: whether a row's features are the pixels of an image, read from their names.

The transformed feature vector holds the raw features in sorted name order
(``preprocessing.feature_names``), so ``px_10`` comes before ``px_2``. A convolutional
encoder needs them in raster order; ``raster_layout`` finds that order from the names alone:

- one index: every name is ``<prefix><i>`` with one common prefix and the indexes exactly
  ``0 .. F-1``, and ``F = s * s``: an ``s x s`` image, row-major (``px_0`` ... ``px_575`` is
  24 x 24);
- two indexes: every name is ``<prefix><r><sep><c>`` with one prefix and one separator, and
  the pairs ``(r, c)`` are exactly ``0 .. R-1 x 0 .. C-1``: an ``R x C`` image
  (``pixel_0_0`` ... ``pixel_7_7`` is 8 x 8).

Anything else (other names, gaps, a count that is not a square) is not a raster: ``None``.
The rule is deliberately strict: a table of 64 unrelated columns named ``f0`` ... ``f63``
would pass it, so the automatic choice of the convolutional encoder (``model.encoder_kind``)
also asks for a minimum side. Written by hand: no library infers an image shape from column
names.
"""

from __future__ import annotations

import dataclasses
import math
import re

_ONE = re.compile(r"^(.*?)(\d+)$")
_TWO = re.compile(r"^(.*?)(\d+)(\D+)(\d+)$")


@dataclasses.dataclass(frozen=True)
class Raster:
    """An image of ``height x width`` pixels.

    ``order[k]`` is the feature index of pixel ``k`` in row-major order.
    """

    height: int
    width: int
    order: tuple[int, ...]

    @property
    def side(self) -> int:
        """The shorter side."""
        return min(self.height, self.width)


def _one_index(names: list[str]) -> Raster | None:
    found = [_ONE.match(n) for n in names]
    if not all(found) or len({m.group(1) for m in found}) != 1:
        return None
    index = {int(m.group(2)): i for i, m in enumerate(found)}
    n = len(names)
    side = math.isqrt(n)
    if side * side != n or sorted(index) != list(range(n)):
        return None
    return Raster(side, side, tuple(index[k] for k in range(n)))


def _two_indexes(names: list[str]) -> Raster | None:
    found = [_TWO.match(n) for n in names]
    if not all(found) or len({(m.group(1), m.group(3)) for m in found}) != 1:
        return None
    cell = {(int(m.group(2)), int(m.group(4))): i for i, m in enumerate(found)}
    height = 1 + max(r for r, _ in cell)
    width = 1 + max(c for _, c in cell)
    if len(cell) != len(names) or height * width != len(names):
        return None
    return Raster(height, width, tuple(cell[(r, c)] for r in range(height) for c in range(width)))


def conv_problem(names: list[str]) -> str | None:
    """Why a conv encoder cannot read features ``names``, or None when they are an image."""
    if raster_layout(list(names)) is not None:
        return None
    shown = ", ".join(list(names)[:3])
    return (
        f"encoder 'conv' needs features that are the pixels of an image, named <prefix><i> "
        f"(i = 0 .. H*W-1 of a square image) or <prefix><row>_<col>; got {shown}, ... "
        f"({len(names)} features): use encoder mlp"
    )


def raster_layout(names: list[str]) -> Raster | None:
    """The image the features ``names`` (in feature-vector order) are the pixels of, or None."""
    if len(names) < 4:
        return None
    return _two_indexes(names) or _one_index(names)
