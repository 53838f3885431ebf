"""Deterministic sampling of positives and negatives: pure functions of (seed, stable keys).

Randomness never comes from worker state or bundle order: every draw is made by a generator
seeded from the run's seed and the anchor's stable key (a hash of its serialized row), so any
runner, with any parallelism, draws the same triplets.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

import numpy as np


def stable_key(seed: int, payload: bytes) -> int:
    """A 63-bit key from ``seed`` and ``payload`` (SHA-256, stable across processes)."""
    digest = hashlib.sha256(str(seed).encode() + b"\0" + payload).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def rng_for(seed: int, key: int) -> np.random.Generator:
    """The generator for one anchor."""
    return np.random.Generator(np.random.PCG64([seed & 0xFFFFFFFF, key]))


class ClassIndex:
    """Class sizes in a fixed order, to draw a uniform negative over all other classes."""

    def __init__(self, sizes: dict[str, int]):
        self.labels = sorted(sizes)
        self.sizes = [sizes[label] for label in self.labels]
        self.offsets = np.cumsum([0, *self.sizes]).tolist()
        self.total = self.offsets[-1]

    def draw_negative_class(self, rng: np.random.Generator, label: str) -> str:
        """A class other than ``label``, drawn with probability proportional to its size."""
        return self.draw_negative(rng, label)[0]

    def draw_negative(self, rng: np.random.Generator, label: str) -> tuple[str, int]:
        """``(class, index in class)`` uniform over every row whose class is not ``label``."""
        own = self.labels.index(label)
        own_size = self.sizes[own]
        r = int(rng.integers(self.total - own_size))
        if r >= self.offsets[own]:
            r += own_size  # skip over the anchor's own class
        cls = bisect.bisect_right(self.offsets, r) - 1
        return self.labels[cls], r - self.offsets[cls]


def draw_positive(rng: np.random.Generator, class_size: int, own_index: int) -> int:
    """Index of a positive uniform over the anchor's class, never the anchor itself."""
    r = int(rng.integers(class_size - 1))
    return r + 1 if r >= own_index else r


def index_of(sorted_keys: Sequence[int], key: int) -> int:
    """Position of ``key`` in a sorted key list."""
    i = (
        int(np.searchsorted(sorted_keys, key))
        if isinstance(sorted_keys, np.ndarray)
        else (bisect.bisect_left(sorted_keys, key))
    )
    if i == len(sorted_keys) or sorted_keys[i] != key:
        raise KeyError(key)
    return i
