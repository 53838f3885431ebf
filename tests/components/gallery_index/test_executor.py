"""The GalleryIndex executor on a real (tiny) SavedModel and real Beam: what a lookup needs."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.components.retrieval_evaluator.test_executor import IDENTITY, _examples, _save_model
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.gallery_index import executor, gallery, signature, spec
from tfx_metric_learning.components.gallery_index import index as index_lib
from tfx_metric_learning.components.gallery_index.settings import GallerySettings


def run(tmp_path, splits, **settings):
    examples = _examples(tmp_path, splits)
    if "gallery" in settings and not os.path.isabs(settings["gallery"]):
        settings["gallery"] = str(tmp_path / settings["gallery"])
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
    assert not os.path.exists(os.path.join(out.uri, spec.EMBEDDINGS_DIR))  # scratch removed


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


def _lookup(model_dir, x, y):
    loaded = tf.saved_model.load(model_dir)
    return loaded.signatures[spec.LOOKUP_SIGNATURE](
        x=tf.constant(x, tf.float32), y=tf.constant(y, tf.float32)
    )


def test_a_small_gallery_gets_a_lookup_signature_answering_as_the_index_does(tmp_path):
    out = run(tmp_path, {"train": 120, "eval": 80}, match_precision=0.9, lookup_k=5)
    info = json.load(open(os.path.join(out.uri, spec.INFO_FILE)))
    assert info[spec.LOOKUP_SIGNATURE] is True and info["gallery"] == "data"
    model_dir = os.path.join(out.uri, spec.SERVING_MODEL_DIR)
    found = _lookup(model_dir, [1.0, 0.0, 0.05], [0.0, -1.0, 0.05])
    assert found[spec.LOOKUP_IDS].shape == (3, 5)
    rows = gallery.read_rows(out.uri)
    built = index_lib.read(os.path.join(out.uri, spec.INDEX_FILE))
    sims, positions = index_lib.search(built, found[spec.LOOKUP_EMBEDDING].numpy(), 5)
    ids = np.array(rows.column("id").to_pylist(), dtype=object)[positions]
    assert (found[spec.LOOKUP_IDS].numpy().astype(str) == ids.astype(str)).all()
    np.testing.assert_allclose(found[spec.LOOKUP_SIMILARITIES].numpy(), sims, atol=1e-5)
    labels = found[spec.LOOKUP_LABELS].numpy().astype(str)
    assert (labels[0] == "a").all() and (labels[1] == "d").all()
    # a match when the nearest similarity reaches the calibrated threshold
    threshold = info["match"]["threshold"]
    assert found[spec.LOOKUP_MATCH].numpy().tolist() == (sims[:, 0] >= threshold).tolist()
    assert found[spec.LOOKUP_MATCH].numpy()[:2].all()
    # the re-saved model keeps the original's weights under the same checkpoint keys
    original = tf.train.load_checkpoint(
        str(tmp_path / "model" / "Format-Serving" / "variables" / "variables")
    )
    resaved = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    kept = set(original.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert kept == {"w/.ATTRIBUTES/VARIABLE_VALUE"}
    assert set(kept) <= set(resaved.get_variable_to_shape_map())
    for key in kept:
        assert np.array_equal(original.get_tensor(key), resaved.get_tensor(key)), key


def test_a_gallery_above_the_signature_size_gets_no_lookup_model(tmp_path):
    out = run(tmp_path, {"train": 120, "eval": 80}, signature_max_rows=199)
    info = json.load(open(os.path.join(out.uri, spec.INFO_FILE)))
    assert info[spec.LOOKUP_SIGNATURE] is False
    assert not os.path.exists(os.path.join(out.uri, spec.SERVING_MODEL_DIR))


def test_without_a_threshold_the_lookup_signature_never_says_match(tmp_path):
    run(tmp_path, {"train": 40, "eval": 40}, signature_max_rows=0)
    model_dir = str(tmp_path / "model" / "Format-Serving")
    out_dir = str(tmp_path / "lookup_model")
    vectors = np.array([[1.0, 0.0]], np.float32)
    signature.write_lookup_model(model_dir, out_dir, vectors, ["p"], ["a"], None, 10)
    found = _lookup(out_dir, [1.0], [0.0])  # exactly the gallery's one row
    assert found[spec.LOOKUP_SIMILARITIES].numpy().tolist() == [[1.0]]  # k is cut to the rows
    assert found[spec.LOOKUP_MATCH].numpy().tolist() == [False]


def test_a_resaved_model_that_answers_otherwise_is_refused(tmp_path):
    run(tmp_path, {"train": 40, "eval": 40}, signature_max_rows=0)
    model_dir = str(tmp_path / "model" / "Format-Serving")
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    out_dir = str(tmp_path / "lookup_model")
    signature.write_lookup_model(model_dir, out_dir, vectors, ["p", "q"], ["a", "b"], 0.5, 2)
    check = executor.first_records(str(tmp_path / "examples" / "Split-eval" / "*"), 8)
    assert signature.verify_lookup_model(model_dir, out_dir, check, vectors) == 8
    with pytest.raises(signature.LookupModelError, match="lookup's nearest similarity"):
        signature.verify_lookup_model(model_dir, out_dir, check, -vectors)


CATALOGUE = (
    "id,x,y,label,name\nitem-a,1.0,0.0,a,north\nitem-b,0.0,1.0,b,east\nitem-x,0.7,0.7,,mixed\n"
)


def test_a_catalogue_is_indexed_with_its_own_ids_instead_of_the_data(tmp_path):
    (tmp_path / "catalogue.csv").write_text(CATALOGUE)
    out = run(tmp_path, {"train": 120, "eval": 80}, gallery="catalogue.csv", match_precision=0.9)
    info = json.load(open(os.path.join(out.uri, spec.INFO_FILE)))
    assert info["rows_per_split"] == {spec.CATALOGUE_SPLIT: 3}
    assert info["ignored_columns"] == ["name"] and info["match"]["queries"] == 80
    rows = gallery.read_rows(out.uri)
    assert rows.column("id").to_pylist() == ["item-a", "item-b", "item-x"]
    assert rows.column("label").to_pylist() == ["a", "b", ""]
    found = _lookup(os.path.join(out.uri, spec.SERVING_MODEL_DIR), [0.9], [0.1])
    assert found[spec.LOOKUP_IDS].numpy()[0].astype(str).tolist() == ["item-a", "item-x", "item-b"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,x,y\n", "has no rows"),
        ("id,x,label\nitem-a,1.0,a\n", "lacks feature\\(s\\) y of the 2 the model takes"),
        ("id,x,y\nitem-a,1,0\nitem-b,0,1\nitem-a,1,1\n", "'item-a' on lines 2 and 4"),
        ("id,x,y\nitem-a,1,0\n,0,1\n", "rows without an id .* on line\\(s\\) 3"),
        ("key,x,y\nitem-a,1,0\n", "has no id column 'id' \\(its columns: key, x, y\\)"),
    ],
    ids=["empty", "other-features", "repeated-ids", "empty-id", "no-id-column"],
)
def test_a_bad_catalogue_is_refused_before_anything_is_embedded(tmp_path, text, message):
    (tmp_path / "catalogue.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        run(tmp_path, {"train": 40, "eval": 40}, gallery="catalogue.csv")
    assert not os.path.exists(tmp_path / "gallery" / spec.EMBEDDINGS_DIR)


def _evaluate(tmp_path, examples, model, **settings):
    """A real RetrievalEvaluator run of ``model`` on ``examples``: its ModelEvaluation."""
    from tfx.types import standard_artifacts

    from tfx_metric_learning.components.retrieval_evaluator import executor as evaluator
    from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings

    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    evaluator.Executor().Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {
            evaluator.LABEL_COLUMN_KEY: "label",
            evaluator.SETTINGS_KEY: EvaluationSettings(**settings).to_json(),
        },
    )
    return evaluation


def _index(tmp_path, name, examples, model, evaluation=None, **settings):
    out = spec.GalleryIndex()
    out.uri = str(tmp_path / name)
    inputs = {spec.EXAMPLES_KEY: [examples], spec.MODEL_KEY: [model]}
    if evaluation is not None:
        inputs[spec.EVALUATION_KEY] = [evaluation]
    executor.Executor().Do(
        inputs,
        {spec.GALLERY_INDEX_KEY: [out]},
        {spec.LABEL_COLUMN_KEY: "label", spec.SETTINGS_KEY: GallerySettings(**settings).to_json()},
    )
    return json.load(open(os.path.join(out.uri, spec.INFO_FILE))), gallery.read_rows(out.uri)


def test_the_evaluations_eval_split_and_neighbours_are_read_and_change_nothing(
    tmp_path, monkeypatch
):
    examples = _examples(tmp_path, {"train": 120, "eval": 300})
    model = _save_model(str(tmp_path / "model"), [[1, 0.2], [0.1, 1]], 1)
    evaluation = _evaluate(tmp_path, examples, model, max_eval_queries=60)
    settings = {"match_precision": 0.9, "max_calibration_queries": 60}
    alone, alone_rows = _index(tmp_path, "alone", examples, model, **settings)
    embedded = []
    real = executor.embeddings.embed_splits
    monkeypatch.setattr(
        executor.embeddings,
        "embed_splits",
        lambda p, patterns, *a, **k: (
            embedded.append(sorted(patterns)) or real(p, patterns, *a, **k)
        ),
    )
    read, read_rows = _index(tmp_path, "read", examples, model, evaluation, **settings)
    assert embedded == [["train"]]  # the eval split's embeddings are the evaluation's
    assert read["eval_split_read_from"] == read["nearest_from"] == evaluation.uri
    assert alone["nearest_from"] is None and alone["eval_split_not_read_because"]
    assert read["match"] == alone["match"] and read["match"]["queries"] == 60
    assert read["index"] | {"build_seconds": 0} == alone["index"] | {"build_seconds": 0}
    assert read_rows.equals(alone_rows)

    # an evaluation of other queries is not read: the gallery embeds and searches itself
    embedded.clear()
    other, other_rows = _index(
        tmp_path, "other", examples, model, evaluation, match_precision=0.9,
        max_calibration_queries=50,
    )  # fmt: skip
    assert embedded == [["eval", "train"]] and other["nearest_from"] is None
    assert other["eval_split_not_read_because"] == (
        "the evaluation scored another number of queries"
    )
    assert other["match"]["queries"] == 50 and other_rows.equals(alone_rows)
