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


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class KeyedRandom:
    """A tiny counter-based generator (SplitMix64) for one anchor or batch.

    Seeded by ``(seed, key)`` alone, so draws never depend on worker state; cheap to create
    (one per anchor). ``integers(n)`` maps a 64-bit draw to ``[0, n)`` by multiply-shift
    (bias below n / 2^64).
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int, key: int):
        self._state = (int(key) ^ ((int(seed) * _GOLDEN) & _MASK)) & _MASK

    def _next(self) -> int:
        self._state = (self._state + _GOLDEN) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def integers(self, n: int) -> int:
        """Uniform in ``[0, n)``."""
        return (self._next() * int(n)) >> 64

    def random(self) -> float:
        """Uniform in ``[0, 1)``."""
        return self._next() / 18446744073709551616.0

    def choice(self, n: int, size: int, replace: bool = False) -> list[int]:
        """``size`` distinct values of ``[0, n)`` in random order (partial Fisher-Yates)."""
        if replace:
            return [self.integers(n) for _ in range(size)]
        if size > n:
            raise ValueError(f"cannot draw {size} distinct values from {n}")
        pool = list(range(n))
        for i in range(size):
            j = i + self.integers(n - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:size]


def rng_for(seed: int, key: int) -> KeyedRandom:
    """The generator for one anchor (or one P x K batch)."""
    return KeyedRandom(seed, key)


class ClassIndex:
    """Class sizes in a fixed order, to draw a uniform negative over all other classes."""

    def __init__(self, sizes: dict[str, int]):
        self.labels = sorted(sizes)
        self.sizes = [sizes[label] for label in self.labels]
        self.offsets = np.cumsum([0, *self.sizes]).tolist()
        self.total = self.offsets[-1]

    def draw_negative_class(self, rng: KeyedRandom, label: str) -> str:
        """A class other than ``label``, drawn with probability proportional to its size."""
        return self.draw_negative(rng, label)[0]

    def draw_negative(self, rng: KeyedRandom, label: str) -> tuple[str, int]:
        """``(class, index in class)`` uniform over every row whose class is not ``label``."""
        own = self.labels.index(label)
        own_size = self.sizes[own]
        r = int(rng.integers(self.total - own_size))
        if r >= self.offsets[own]:
            r += own_size  # skip over the anchor's own class
        cls = bisect.bisect_right(self.offsets, r) - 1
        return self.labels[cls], r - self.offsets[cls]


def draw_positive(rng: KeyedRandom, class_size: int, own_index: int) -> int:
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
