"""The GalleryIndex executor on a real (tiny) SavedModel and real Beam: what a lookup needs."""

import json
import os

import numpy as np
import pytest

from tests.components.retrieval_evaluator.test_executor import IDENTITY, _examples, _save_model
from tfx_metric_learning.components.gallery_index import executor, gallery, spec
from tfx_metric_learning.components.gallery_index import index as index_lib
from tfx_metric_learning.components.gallery_index.settings import GallerySettings


def run(tmp_path, splits, **settings):
    examples = _examples(tmp_path, splits)
    model = _save_model(str(tmp_path / "model"), IDENTITY, 1)
    out = spec.GalleryIndex()
    out.uri = str(tmp_path / "gallery")
    executor.Executor().Do(
        {spec.EXAMPLES_KEY: [examples], spec.MODEL_KEY: [model]},
        {spec.GALLERY_INDEX_KEY: [out]},
        {
            spec.LABEL_COLUMN_KEY: "label",
            spec.SETTINGS_KEY: GallerySettings(**settings).to_json(),
        },
    )
    return out


def test_the_labelled_rows_are_indexed_with_ids_labels_and_a_threshold(tmp_path):
    out = run(tmp_path, {"train": 120, "eval": 80, "new_span": 40}, match_precision=0.9)
    info = json.load(open(os.path.join(out.uri, spec.INFO_FILE)))
    assert info["rows_per_split"] == {"train": 120, "eval": 80}  # new_span repeats rows
    assert info["index"]["kind"] == index_lib.FLAT and info["index"]["rows"] == 200
    match = info["match"]
    assert match["threshold"] is not None and match["precision"] >= 0.9
    assert match["queries"] == 80 and 0 < match["recall"] <= 1
    assert out.get_float_custom_property(executor.THRESHOLD_PROPERTY) == match["threshold"]
    rows = gallery.read_rows(out.uri)
    assert rows.num_rows == 200 and set(rows.column("label").to_pylist()) == set("abcd")
    # the index answers: a gallery row's nearest neighbour is itself, then its class
    built = index_lib.read(os.path.join(out.uri, spec.INDEX_FILE))
    assert built.ntotal == 200
    q = np.array([[1.0, 0.0], [0.0, -1.0]], np.float32)  # the centres of a and d
    _, ids = index_lib.search(built, q, 5)
    labels = np.array(rows.column("label").to_pylist())
    assert (labels[ids[0]] == "a").all() and (labels[ids[1]] == "d").all()
    assert os.path.getsize(os.path.join(out.uri, spec.CURVE_FILE)) > 1000


def test_an_approximate_index_reports_its_measured_recall(tmp_path):
    out = run(
        tmp_path,
        {"train": 400, "eval": 80},
        exact_max_rows=100,
        index_recall=0.9,
        recall_queries=50,
    )
    info = json.load(open(os.path.join(out.uri, spec.INFO_FILE)))["index"]
    assert info["kind"] == index_lib.IVF_FLAT and info["recall_at_k"] >= 0.9
    assert out.get_string_custom_property(executor.KIND_PROPERTY) == index_lib.IVF_FLAT


def test_a_gallery_without_an_eval_split_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match="needs the 'eval' split to calibrate"):
        run(tmp_path, {"train": 40})
