r"""Exact, deterministic sampling of positives and negatives: pure functions of seed and keys.

Rows are numbered in *class order*: all rows of the first class (sorted labels), then the
second, ...; within a class by block, then by position in the block. That global index ``G``
is all a draw needs:

- a positive of an anchor with class-order index ``g`` in class ``c`` (size ``s_c``, first
  index ``o_c``) is ``o_c + j`` with ``j`` uniform over ``{0..s_c-1} \ {g - o_c}``;
- a negative is uniform over the ``N - s_c`` rows of the other classes: ``r`` uniform over
  ``[0, N - s_c)``, plus ``s_c`` when ``r >= o_c`` (skipping the anchor's class).

Both are exactly uniform over the whole class / all other rows, however large a class is:
no pool, no per-class list. ``ClassPlan.locate`` maps ``G`` back to (block, row) with the
per-block class counts alone (at most blocks x classes integers, whatever the row count).

Randomness is a SplitMix64 stream per (seed, split, unit): counter-based, so any runner,
parallelism or bundle order draws the same values (``uniforms``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stable_hash(*parts: object) -> int:
    """A 64-bit key of ``parts`` (SHA-256 of their text; stable across processes)."""
    text = "\0".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniforms(key: int, count: int, start: int = 0) -> np.ndarray:
    """Draws ``start .. start+count-1`` of the SplitMix64 stream ``key``, uniform in [0, 1).

    Counter-based: draw ``i`` depends on ``key`` and ``i`` alone.
    """
    with np.errstate(over="ignore"):
        counters = np.arange(start + 1, start + count + 1, dtype=np.uint64)
        z = _mix(np.uint64(key) + counters * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def below(u: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """``floor(u * n)``: uniform integers in ``[0, n)`` from uniforms ``u`` (n >= 1)."""
    n = np.asarray(n, np.int64)
    return np.minimum((u * n).astype(np.int64), n - 1)


@dataclass
class ClassPlan:
    """Classes and blocks of one split; maps class-order indices to (block, row) and back.

    ``labels`` sorted; ``sizes[c]`` rows of class ``c`` starting at class-order index
    ``offsets[c]``. Entry ``e`` (sorted by class, then block) says that class
    ``entry_class[e]`` has rows in block ``entry_block[e]``, from index ``entry_start[e]``.
    """

    labels: list[str]
    sizes: np.ndarray
    offsets: np.ndarray
    block_ids: list[str]
    block_rows: np.ndarray
    entry_class: np.ndarray
    entry_block: np.ndarray
    entry_start: np.ndarray

    @classmethod
    def from_block_counts(cls, blocks: list[tuple[str, int, dict[str, int]]]) -> ClassPlan:
        """Builds the plan from each block's ``(block id, rows, {label: count})``."""
        blocks = sorted(blocks, key=lambda b: b[0])
        labels = sorted({label for _, _, counts in blocks for label in counts})
        index = {label: i for i, label in enumerate(labels)}
        pairs = sorted(
            (index[label], b, n)
            for b, (_, _, counts) in enumerate(blocks)
            for label, n in counts.items()
            if n > 0
        )
        entry_class = np.asarray([c for c, _, _ in pairs], np.int64)
        entry_block = np.asarray([b for _, b, _ in pairs], np.int64)
        counts = np.asarray([n for _, _, n in pairs], np.int64)
        entry_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        sizes = np.bincount(entry_class, weights=counts, minlength=len(labels)).astype(np.int64)
        return cls(
            labels=labels,
            sizes=sizes,
            offsets=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
            block_ids=[b[0] for b in blocks],
            block_rows=np.asarray([b[1] for b in blocks], np.int64),
            entry_class=entry_class,
            entry_block=entry_block,
            entry_start=entry_start,
        )

    @property
    def total(self) -> int:
        """Rows in the split."""
        return int(self.sizes.sum())

    def class_ids(self, labels: list[str]) -> np.ndarray:
        """Class number of each label."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.fromiter((index[label] for label in labels), np.int64, len(labels))

    def global_index(self, block: int, class_ids: np.ndarray) -> np.ndarray:
        """Class-order index of each row of ``block`` (rows given by their class numbers)."""
        occurrence = occurrences(class_ids)
        keys = self.entry_class * len(self.block_ids) + self.entry_block
        e = np.searchsorted(keys, class_ids * len(self.block_ids) + block)
        return self.entry_start[e] + occurrence

    def locate(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(block, class, occurrence of that class in the block)`` of class-order indices."""
        e = np.searchsorted(self.entry_start, g, side="right") - 1
        return self.entry_block[e], self.entry_class[e], g - self.entry_start[e]

    def by_block(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(block of each index, a stable order grouping the indices by block)``."""
        blocks = self.locate(g)[0] if len(g) else g
        return blocks, np.argsort(blocks, kind="stable")

    def class_of(self, g: np.ndarray) -> np.ndarray:
        """Class number of class-order indices."""
        return np.searchsorted(self.offsets, g, side="right") - 1

    def draw_positive(self, u: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Uniform over the anchor's class minus the anchor (``own``: class-order indices).

        Anchors of single-row classes must be removed first.
        """
        c = self.class_of(own)
        j = below(u, self.sizes[c] - 1)
        j = j + (j >= own - self.offsets[c])
        return self.offsets[c] + j

    def draw_negative(self, u: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Uniform over every row whose class is not the anchor's."""
        c = self.class_of(own)
        r = below(u, self.total - self.sizes[c])
        return r + np.where(r >= self.offsets[c], self.sizes[c], 0)


def occurrences(class_ids: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows of the array have its class."""
    order = np.argsort(class_ids, kind="stable")
    sorted_ids = class_ids[order]
    first = np.searchsorted(sorted_ids, sorted_ids, side="left")
    out = np.empty(len(class_ids), np.int64)
    out[order] = np.arange(len(class_ids)) - first
    return out


class BlockRows:
    """Row numbers in one block of ``(class, occurrence)`` pairs, the inverse of ``locate``.

    One stable sort of the block's class numbers, then one binary search per lookup:
    O(n log n) once, O(m log n) per ``rows`` call of m pairs.
    """

    def __init__(self, class_ids: np.ndarray):
        self._order = np.argsort(class_ids, kind="stable")
        self._sorted = class_ids[self._order]

    def rows(self, classes: np.ndarray, occurrence: np.ndarray) -> np.ndarray:
        """The row of the ``occurrence``-th row of class ``classes`` in the block."""
        return self._order[np.searchsorted(self._sorted, classes, side="left") + occurrence]


def distinct(key: int, n: int, size: int) -> list[int]:
    """``size`` distinct values of ``[0, n)`` in random order (sparse partial Fisher-Yates).

    O(size) time and memory however large ``n`` is.
    """
    if size > n:
        raise ValueError(f"cannot draw {size} distinct values from {n}")
    swaps: dict[int, int] = {}
    out = []
    for i, u in enumerate(uniforms(key, size)):
        j = i + int(below(u, n - i))
        out.append(swaps.get(j, j))
        swaps[j] = swaps.get(i, i)
    return out


def examples_built(
    mode: str,
    class_sizes: list[int],
    per_anchor: int,
    pk_classes: int,
    pk_examples: int,
    pk_num_batches: int,
) -> int:
    """Rows PairGen writes for a split with these class sizes: what the Trainer batches.

    ``none``: every row. ``pairs``/``triplets``/``triplets_k``: ``per_anchor`` per row of a
    class with a positive (2 rows or more) and a negative (not the only class).
    ``pk_batches``: ``pk_num_batches`` (or total // (P x K)) groups of P x K rows, or none
    when fewer than P classes have K rows.
    """
    total = sum(class_sizes)
    if mode == "none":
        return total
    if mode == "pk_batches":
        group = pk_classes * pk_examples
        eligible = sum(1 for s in class_sizes if s >= pk_examples)
        return (pk_num_batches or total // group) * group if eligible >= pk_classes else 0
    return per_anchor * sum(s for s in class_sizes if 2 <= s < total)
