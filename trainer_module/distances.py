"""Distances between embeddings, as objects every loss takes.

Each distance gives a pairwise matrix (one matrix product, no Python loops) and a paired
(row-by-row) vector. All are safe at zero: the gradient of ``sqrt`` is never taken at 0.
"""

from __future__ import annotations

import tensorflow as tf

_EPS = 1e-12


def safe_sqrt(x: tf.Tensor) -> tf.Tensor:
    """``sqrt(max(x, 0))`` whose gradient is 0 (not inf/NaN) where ``x <= 0``."""
    positive = x > 0.0
    return tf.where(positive, tf.sqrt(tf.where(positive, x, tf.ones_like(x))), tf.zeros_like(x))


def safe_l2_normalize(x: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """``x / ||x||`` with a finite gradient at ``x = 0`` (a zero vector stays zero)."""
    norm_sq = tf.reduce_sum(tf.square(x), axis=axis, keepdims=True)
    return x * tf.math.rsqrt(tf.maximum(norm_sq, _EPS))


class Distance:
    """A distance ``d(x, y)``.

    ``pairwise(a, b)[i, j] = d(a_i, b_j)`` and ``paired(a, b)[i] = d(a_i, b_i)``.
    """

    name = "distance"

    def pairwise(self, a: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
        """Distance matrix ``[len(a), len(b)]`` (``b`` defaults to ``a``)."""
        raise NotImplementedError

    def paired(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Distances between matching rows, shape ``[len(a)]``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredL2(Distance):
    """Squared Euclidean distance ``||x - y||^2 = ||x||^2 - 2 x.y + ||y||^2`` (clipped at 0)."""

    name = "squared_l2"

    def pairwise(self, a: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
        """Squared distance matrix from one matrix product."""
        b = a if b is None else b
        a_sq = tf.reduce_sum(tf.square(a), axis=1, keepdims=True)
        b_sq = tf.reduce_sum(tf.square(b), axis=1, keepdims=True)
        d = a_sq - 2.0 * tf.matmul(a, b, transpose_b=True) + tf.transpose(b_sq)
        return tf.maximum(d, 0.0)

    def paired(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Row-wise squared distances."""
        return tf.reduce_sum(tf.square(a - b), axis=-1)


class L2(Distance):
    """Euclidean distance ``||x - y||``, with ``sqrt`` made safe at 0."""

    name = "l2"

    def pairwise(self, a: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
        """Euclidean distance matrix."""
        return safe_sqrt(SquaredL2().pairwise(a, b))

    def paired(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Row-wise Euclidean distances."""
        return safe_sqrt(SquaredL2().paired(a, b))


class Cosine(Distance):
    """Cosine distance ``1 - x.y / (||x|| ||y||)``, in ``[0, 2]``."""

    name = "cosine"

    def pairwise(self, a: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
        """Cosine distance matrix."""
        a_n = safe_l2_normalize(a)
        b_n = a_n if b is None else safe_l2_normalize(b)
        return 1.0 - tf.matmul(a_n, b_n, transpose_b=True)

    def paired(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Row-wise cosine distances."""
        return 1.0 - tf.reduce_sum(safe_l2_normalize(a) * safe_l2_normalize(b), axis=-1)


DISTANCES: dict[str, type[Distance]] = {cls.name: cls for cls in (L2, SquaredL2, Cosine)}


def get_distance(name: str) -> Distance:
    """The distance registered under ``name`` (``l2``, ``squared_l2``, ``cosine``)."""
    try:
        return DISTANCES[name]()
    except KeyError:
        raise ValueError(
            f"unknown distance {name!r}; valid: {', '.join(sorted(DISTANCES))}"
        ) from None
