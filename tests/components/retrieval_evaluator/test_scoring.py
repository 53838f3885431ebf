import numpy as np
import pytest

from tests.components.retrieval_evaluator.test_embeddings import write_shards
from tfx_metric_learning.components.retrieval_evaluator import embeddings, scoring


@pytest.mark.parametrize("max_queries", [0, 40])
def test_shards_read_whole_score_as_shards_read_in_tiles(tmp_path, monkeypatch, max_queries):
    rng = np.random.default_rng(2)
    labels = np.array([f"c{i % 6}" for i in range(120)])
    emb = (rng.normal(size=(6, 5))[np.arange(120) % 6] + rng.normal(size=(120, 5))).astype(
        np.float32
    )
    parts = [[(labels[s : s + 10], emb[s : s + 10]) for s in range(a, a + 60, 10)] for a in (0, 60)]
    write_shards(str(tmp_path), "candidate", "eval", parts)
    whole, queries = scoring.score_shards(
        str(tmp_path), "candidate", "eval", None, [1, 5], max_queries=max_queries
    )
    monkeypatch.setattr(embeddings, "TILE_BYTES", 500)  # no split fits: tiles of a few rows
    tiled, tiled_queries = scoring.score_shards(
        str(tmp_path), "candidate", "eval", None, [1, 5], max_queries=max_queries
    )
    assert whole["metrics"] == tiled["metrics"]
    np.testing.assert_array_equal(queries[0], tiled_queries[0])
    assert len(queries[1]) == (max_queries or 120)
