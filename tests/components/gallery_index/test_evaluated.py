"""When an evaluation stands for the gallery's own eval-split work, and when it does not."""

import io
import json
import os

import numpy as np
import pytest
from tfx.types import standard_artifacts

from tfx_metric_learning.components.gallery_index import evaluated
from tfx_metric_learning.components.gallery_index.settings import GallerySettings
from tfx_metric_learning.components.retrieval_evaluator import embeddings
from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec

SCORED_ON = {
    "examples": "/data/examples/7",
    "split": "eval",
    "query_split": "",
    "gallery_split": "",
    "seed": 42,
    "max_eval_queries": 20000,
}
KEYS = np.array([5, 9, 2], np.uint64)


def _evaluation(tmp_path, scored_on=None, model_uri="/models/3", nearest=True, shards=True):
    art = standard_artifacts.ModelEvaluation()
    art.uri = str(tmp_path / "evaluation")
    os.makedirs(art.uri)
    record = {"candidate_model": {"uri": model_uri}, "scored_on": scored_on or SCORED_ON}
    with open(os.path.join(art.uri, evaluator_spec.EVALUATION_FILE), "w") as f:
        json.dump(record, f)
    if nearest:
        buffer = io.BytesIO()
        np.savez(buffer, keys=KEYS, similarity=np.array([0.9, 0.5, 0.7]), correct=[1, 0, 1])
        with open(os.path.join(art.uri, evaluator_spec.NEAREST_FILE), "wb") as f:
            f.write(buffer.getvalue())
    if shards:
        emb_dir = os.path.join(art.uri, evaluator_spec.EMBEDDINGS_DIR)
        os.makedirs(emb_dir)
        prefix = embeddings.shard_prefix(emb_dir, evaluator_spec.CANDIDATE, "eval")
        open(f"{prefix}-00000-of-00001{embeddings.SHARD_SUFFIX}", "wb").close()
    return art


def _check(art, model_uri="/models/3", examples_uri="/data/examples/7", **settings):
    return evaluated.from_evaluation(
        [] if art is None else [art], model_uri, examples_uri, GallerySettings(**settings)
    )


def test_the_evaluation_of_the_model_on_the_same_rows_and_sample_is_read(tmp_path):
    found, why = _check(_evaluation(tmp_path))
    assert why == "" and found.uri == str(tmp_path / "evaluation")
    assert len(found.shards.files) == 1
    np.testing.assert_array_equal(found.nearest["keys"], KEYS)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"model_uri": "/models/4"}, "another model"),
        ({"examples_uri": "/data/examples/8"}, "other examples"),
        ({"seed": 7}, "another seed"),
        ({"max_calibration_queries": 0}, "another number of queries"),
        ({"scored_on": SCORED_ON | {"split": "valid"}}, "not the 'eval' split leave-one-out"),
        (
            {"scored_on": SCORED_ON | {"query_split": "eval", "gallery_split": "train"}},
            "not the 'eval' split leave-one-out",
        ),
    ],
)
def test_anything_else_is_not_read_and_the_reason_names_it(tmp_path, change, reason):
    made = {k: change.pop(k) for k in ("model_uri", "scored_on") if k in change}
    art = _evaluation(tmp_path, made.get("scored_on"), made.get("model_uri", "/models/3"))
    found, why = _check(art, **change)
    assert found is None and why == f"the evaluation scored {reason}"


def test_missing_files_or_input_are_named(tmp_path):
    assert _check(None) == (None, "no evaluation input")
    found, why = _check(_evaluation(tmp_path / "a", nearest=False))
    assert found is None and why.endswith(f"{evaluator_spec.NEAREST_FILE} does not exist")
    found, why = _check(_evaluation(tmp_path / "b", shards=False))
    assert found is None and why.startswith("no embedding shards match")


def test_the_neighbours_are_used_only_for_the_same_queries(tmp_path):
    found, _ = _check(_evaluation(tmp_path))
    keys = np.array([7, 5, 1, 9, 2], np.uint64)
    sims, correct = evaluated.nearest_for(found, keys, np.array([0 + 1, 3, 4]))
    np.testing.assert_array_equal(sims, [0.9, 0.5, 0.7])
    np.testing.assert_array_equal(correct, [True, False, True])
    assert evaluated.nearest_for(found, keys, np.array([1, 3])) is None
    assert evaluated.nearest_for(found, keys, np.array([0, 3, 4])) is None
    assert evaluated.nearest_for(None, keys, np.array([1, 3, 4])) is None
