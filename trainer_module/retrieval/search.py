"""Exact k-nearest-neighbour search by cosine similarity, in query x gallery tiles.

For each block of queries, the gallery is visited tile by tile: one matrix product gives the
tile's similarities, ``top_k`` keeps the tile's best ``k``, and a second ``top_k`` merges them
with the running best. Memory is O(query_block x gallery_block + query_block x k); the whole
similarity matrix never exists. Ties go to the lower gallery index (``tf.math.top_k`` keeps
the lower position first, and earlier tiles come first in every merge), so results do not
depend on the block sizes. TensorFlow runs the products and selections on every core.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

QUERY_BLOCK = 1024
GALLERY_BLOCK = 65536


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@tf.function(reduce_retracing=True)
def _tile_top_k(q, g, best_sims, best_idx, offset, self_ids, k):
    sims = tf.matmul(q, g, transpose_b=True)  # [b, t]
    gallery_ids = offset + tf.range(tf.shape(g)[0], dtype=tf.int64)
    is_self = tf.equal(self_ids[:, None], gallery_ids[None, :])
    sims = tf.where(is_self, tf.constant(-np.inf, tf.float32), sims)
    tile_k = tf.minimum(k, tf.shape(g)[0])
    tile_sims, tile_pos = tf.math.top_k(sims, tile_k)
    merged_sims = tf.concat([best_sims, tile_sims], axis=1)
    merged_idx = tf.concat([best_idx, tf.gather(gallery_ids, tile_pos)], axis=1)
    keep_sims, keep_pos = tf.math.top_k(merged_sims, k)
    return keep_sims, tf.gather(merged_idx, keep_pos, batch_dims=1)


def search_blocks(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    exclude_self: bool,
    query_block: int = QUERY_BLOCK,
    gallery_block: int = GALLERY_BLOCK,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yields ``(start, indices [b, k], similarities [b, k])`` per block of queries.

    With ``exclude_self``, queries and gallery are the same set and query ``i`` never
    retrieves gallery item ``i``. Inputs are L2-normalised here. Slots beyond the number of
    available gallery items hold index -1 and similarity -inf.
    """
    q_all = tf.constant(normalise(queries))
    g_all = normalise(gallery)
    tiles = [
        (start, tf.constant(g_all[start : start + gallery_block]))
        for start in range(0, len(g_all), gallery_block)
    ]
    k_t = tf.constant(k, tf.int32)
    for start in range(0, len(queries), query_block):
        q = q_all[start : start + query_block]
        b = int(q.shape[0])
        self_ids = (
            tf.range(start, start + b, dtype=tf.int64)
            if exclude_self
            else tf.fill([b], tf.constant(-1, tf.int64))
        )
        best_sims = tf.fill([b, k], tf.constant(-np.inf, tf.float32))
        best_idx = tf.fill([b, k], tf.constant(-1, tf.int64))
        for offset, g in tiles:
            best_sims, best_idx = _tile_top_k(
                q, g, best_sims, best_idx, tf.constant(offset, tf.int64), self_ids, k_t
            )
        yield start, best_idx.numpy(), best_sims.numpy()


def nearest_neighbours(
    queries: np.ndarray,
    gallery: np.ndarray | None = None,
    k: int = 10,
    query_block: int = QUERY_BLOCK,
    gallery_block: int = GALLERY_BLOCK,
) -> np.ndarray:
    """Indices ``[Nq, k]`` of the k most similar gallery items (leave-one-out if no gallery)."""
    exclude_self = gallery is None
    gallery = queries if gallery is None else gallery
    out = np.empty((len(queries), k), dtype=np.int64)
    for start, idx, _ in search_blocks(
        queries, gallery, k, exclude_self, query_block, gallery_block
    ):
        out[start : start + len(idx)] = idx
    return out
