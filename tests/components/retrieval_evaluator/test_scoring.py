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


@pytest.mark.parametrize("max_queries", [0, 40])
def test_scores_do_not_depend_on_the_order_the_rows_were_written_in(tmp_path, max_queries):
    """Workers write rows in any order: NMI and the verification pairs follow the row keys."""
    rng = np.random.default_rng(3)
    labels = np.array([f"c{i % 6}" for i in range(120)])
    emb = (rng.normal(size=(6, 5))[np.arange(120) % 6] + rng.normal(size=(120, 5))).astype(
        np.float32
    )
    scored = []
    for name, order in (("a", np.arange(120)), ("b", rng.permutation(120))):
        rows = [(labels[order[s : s + 10]], emb[order[s : s + 10]]) for s in range(0, 120, 10)]
        write_shards(str(tmp_path), name, "eval", [rows[:7], rows[7:]])
        result, _ = scoring.score_shards(
            str(tmp_path), name, "eval", None, [1, 5], max_queries=max_queries
        )
        scored.append(result["metrics"])
    first, second = scored
    assert first.keys() == second.keys()
    for metric in ("nmi", "roc_auc", "eer", "separation", "overlap"):
        assert first[metric] == second[metric], metric
    for metric, value in first.items():
        assert second[metric] == pytest.approx(value, rel=1e-12, abs=1e-12), metric
