"""The RetrievalEvaluator executor on real (tiny) SavedModels and real Beam."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from tfx_metric_learning.components.retrieval_evaluator import embeddings, executor
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings

FEATURES = ("x", "y")


class _Model(tf.Module):
    """The Trainer's three signatures, for an encoder ``[x, y] @ W`` (unit norm).

    ``transform_features`` outputs ``features`` = ``[x, y, 5]``: a constant extra dimension,
    which brings every row's direction closer together (a worse raw baseline than ``[x, y]``).
    """

    def __init__(self, weights):
        super().__init__()
        self.w = tf.Variable(weights, dtype=tf.float32, trainable=False)

    def _parse(self, examples):
        spec = {f: tf.io.FixedLenFeature([1], tf.float32) for f in FEATURES}
        parsed = tf.io.parse_example(examples, spec)
        return tf.concat([parsed[f] for f in FEATURES], axis=1)

    def _embed(self, x):
        return {"embedding": tf.math.l2_normalize(tf.matmul(x, self.w), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_examples(self, examples):
        return self._embed(self._parse(examples))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def transform_features(self, examples):
        x = self._parse(examples)
        return {"features": tf.concat([x, tf.fill([tf.shape(x)[0], 1], 5.0)], axis=1)}

    @tf.function(input_signature=[{f: tf.TensorSpec([None], tf.float32, name=f) for f in FEATURES}])
    def serve_raw(self, features):
        return self._embed(tf.stack([features[f] for f in FEATURES], axis=1))


def _save_model(path, weights, model_id):
    model = standard_artifacts.Model()
    model.uri = path
    model.id = model_id
    m = _Model(weights)
    signatures = {
        "serve_examples": m.serve_examples,
        "transform_features": m.transform_features,
        "serving_default": m.serve_raw,
    }
    tf.saved_model.save(m, os.path.join(path, "Format-Serving"), signatures=signatures)
    return model


def _examples(tmp_path, splits):
    """Rows around 4 centres; the label is the centre."""
    rng = np.random.default_rng(0)
    centres = {"a": (1, 0), "b": (0, 1), "c": (-1, 0), "d": (0, -1)}
    art = standard_artifacts.Examples()
    art.uri = str(tmp_path / "examples")
    art.split_names = artifact_utils.encode_split_names(list(splits))
    for split, n in splits.items():
        folder = os.path.join(art.uri, f"Split-{split}")
        os.makedirs(folder)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options) as w:
            for i in range(n):
                label = "abcd"[i % 4]
                cx, cy = centres[label]
                ex = tf.train.Example()
                ex.features.feature["x"].float_list.value.append(cx + rng.normal(0, 0.3))
                ex.features.feature["y"].float_list.value.append(cy + rng.normal(0, 0.3))
                ex.features.feature["label"].bytes_list.value.append(label.encode())
                w.write(ex.SerializeToString(deterministic=True))
    return art


def run(tmp_path, model, baseline=None, splits=None, baselines=None, examples=None, **props):
    examples = examples or _examples(tmp_path, splits or {"eval": 80})
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    inputs = {"examples": [examples], "model": [model]}
    if baseline is not None:
        inputs["baseline_model"] = [baseline]
    if baselines is not None:
        inputs["baselines"] = [baselines]
    settings = EvaluationSettings(**({"thresholds": {"map_at_r": 0.5}} | props))
    executor.Executor().Do(
        inputs,
        {"evaluation": [evaluation], "blessing": [blessing]},
        {executor.LABEL_COLUMN_KEY: "label", executor.SETTINGS_KEY: settings.to_json()},
    )
    record = json.load(open(os.path.join(evaluation.uri, executor.EVALUATION_FILE)))
    metrics = json.load(open(os.path.join(evaluation.uri, executor.METRICS_FILE)))
    return record, metrics, blessing


IDENTITY = [[1, 0], [0, 1]]
COLLAPSED = [[1, 1], [1, 1]]  # every point on one line: classes overlap


def test_good_model_is_blessed_with_tfx_conventions(tmp_path):
    model = _save_model(str(tmp_path / "m1"), IDENTITY, 11)
    record, metrics, blessing = run(tmp_path, model)
    for key in (
        "precision_at_1",
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "r_precision",
        "map_at_r",
        "nmi",
        "roc_auc",
        "eer",
        "separation",
        "overlap",
    ):
        assert key in metrics, key
    assert metrics["map_at_r"] > 0.8 and record["blessed"] is True
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("current_model_id") == 11
    assert blessing.get_string_custom_property("current_model") == model.uri
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert os.path.exists(record["report"])
    html = open(record["report"]).read()
    assert "BLESSED" in html and "data:image/png;base64," in html
    for png in (
        "recall_at_k.png",
        "distance_histograms.png",
        "projection.png",
        "map_at_r_per_class.png",
    ):
        assert os.path.getsize(os.path.join(os.path.dirname(record["report"]), png)) > 1000


def test_worse_candidate_than_baseline_is_not_blessed(tmp_path):
    candidate = _save_model(str(tmp_path / "cand"), COLLAPSED, 21)
    baseline = _save_model(str(tmp_path / "base"), IDENTITY, 20)
    record, metrics, blessing = run(tmp_path, candidate, baseline, thresholds={})
    assert record["blessed"] is False
    assert record["baseline_model"]["metrics"]["map_at_r"] > metrics["map_at_r"]
    assert any("worse than the baseline" in r for r in record["reasons"])
    assert blessing.get_int_custom_property("blessed") == 0
    assert blessing.get_int_custom_property("baseline_model_id") == 20
    assert blessing.get_string_custom_property("baseline_model") == baseline.uri
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))


def test_threshold_failure_is_reported(tmp_path):
    model = _save_model(str(tmp_path / "m"), COLLAPSED, 5)
    record, _, blessing = run(tmp_path, model, thresholds={"map_at_r": 0.99, "eer": 0.01})
    assert record["blessed"] is False
    assert any("map_at_r" in r and "below" in r for r in record["reasons"])
    assert any("eer" in r and "above" in r for r in record["reasons"])


def test_query_and_gallery_splits(tmp_path):
    model = _save_model(str(tmp_path / "m"), IDENTITY, 3)
    record, metrics, _ = run(
        tmp_path,
        model,
        splits={"query": 20, "gallery": 60},
        query_split="query",
        gallery_split="gallery",
    )
    assert record["query_split"] == "query" and record["gallery_split"] == "gallery"
    assert metrics["num_queries"] == 20 and metrics["map_at_r"] > 0.8


def test_unknown_metric_in_thresholds_is_refused(tmp_path):
    model = _save_model(str(tmp_path / "m"), IDENTITY, 3)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        run(tmp_path, model, thresholds={"accuracy": 0.5})


def test_a_figure_that_fails_costs_neither_metrics_nor_blessing(tmp_path, monkeypatch):
    from tfx_metric_learning.components.retrieval_evaluator import report

    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(report, "_projection", broken)
    model = _save_model(str(tmp_path / "m"), IDENTITY, 7)
    record, metrics, blessing = run(tmp_path, model)
    assert record["blessed"] is True and metrics["map_at_r"] > 0.8
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert record["report_errors"] == [
        "figure 'Embeddings in 2-D' could not be drawn: RuntimeError: no display"
    ]
    assert "could not be drawn" in open(record["report"]).read()
    monkeypatch.setattr(report, "write_report", broken)  # the whole report fails
    record, _, blessing = run(tmp_path / "again", model)
    assert record["blessed"] is True and record["report"] is None
    assert record["report_errors"] == ["the report could not be written: RuntimeError: no display"]
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))


def test_raw_feature_baselines_are_scored_and_a_model_worse_than_its_inputs_is_refused(
    tmp_path,
):
    good = _save_model(str(tmp_path / "good"), IDENTITY, 1)
    record, metrics, _ = run(tmp_path / "good_run", good, thresholds={})
    raw = record["raw_baselines"]
    assert set(raw) == {"raw_features", "transformed_features"}
    # the identity encoder embeds the raw features themselves: the same metrics, lift 0
    assert raw["raw_features"]["map_at_r"] == pytest.approx(metrics["map_at_r"], abs=1e-6)
    assert raw["transformed_features"]["map_at_r"] < raw["raw_features"]["map_at_r"]
    assert record["lift_over_raw"]["over"] == "raw_features"
    assert record["lift_over_raw"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert record["blessed"] is True  # lift 0 meets the default --min-lift-over-raw 0

    collapsed = _save_model(str(tmp_path / "collapsed"), COLLAPSED, 2)
    record, metrics, blessing = run(tmp_path / "collapsed_run", collapsed, thresholds={})
    lift = record["lift_over_raw"]["value"]
    assert lift == pytest.approx(metrics["map_at_r"] - raw["raw_features"]["map_at_r"])
    assert lift < -0.2
    assert record["blessed"] is False
    assert blessing.get_int_custom_property("blessed") == 0
    (reason,) = record["reasons"]
    assert "worse than the raw_features baseline's" in reason
    assert "separates worse than its own inputs" in reason
    # a tolerance below the measured lift lets the same model through
    record, _, _ = run(
        tmp_path / "tolerated", collapsed, thresholds={}, min_lift_over_raw=lift - 0.01
    )
    assert record["blessed"] is True
    # a lift asked of the identity encoder that it cannot have
    record, _, _ = run(tmp_path / "asked", good, thresholds={}, min_lift_over_raw=0.05)
    assert record["blessed"] is False and "only 0.0000 better" in record["reasons"][0]


def test_a_query_sample_searches_the_whole_split_and_reports_its_error(tmp_path):
    model = _save_model(str(tmp_path / "m"), [[1, 0.2], [0.1, 1]], 3)
    full, full_metrics, _ = run(tmp_path / "full", model, splits={"eval": 300})
    assert full["candidate_model"]["sampling_error"] is None
    assert full["queries"]["scored"] == 300
    # the shards, not one list: every source and split wrote TFRecord shards
    emb_dir = os.path.join(str(tmp_path / "full" / "evaluation"), executor.EMBEDDINGS_DIR)
    assert sorted({f.split("-")[0] for f in os.listdir(emb_dir)}) == [
        "candidate",
        "raw_features",
        "transformed_features",
    ]
    assert all(f.endswith(".tfrecord") for f in os.listdir(emb_dir))

    sampled = [
        run(tmp_path / f"s{i}", model, splits={"eval": 300}, max_eval_queries=60) for i in range(2)
    ]
    (record, metrics, _), (again, _, _) = sampled
    assert metrics["num_queries"] == 60 and record["queries"]["scored"] == 60
    assert record["candidate_model"]["metrics"] == again["candidate_model"]["metrics"]  # seeded
    errors = record["candidate_model"]["sampling_error"]
    assert set(errors) >= {"map_at_r", "precision_at_1", "recall_at_1", "r_precision"}
    assert errors["map_at_r"] > 0  # 0 only where every sampled query scores the same
    for name, error in errors.items():
        assert 0 <= error < 0.2
        # a normal interval: degenerate (0) for a rate every sampled query hits
        slack = 0 if name in ("map_at_r", "r_precision") else 3 / 60
        assert abs(metrics[name] - full_metrics[name]) <= 2 * error + slack, name
    # the gallery is the whole split: the sample's queries find neighbours among all 300 rows
    assert metrics["map_at_r"] > 0.5
    assert "&plusmn;" in open(record["report"]).read()

    other_seed, _, _ = run(
        tmp_path / "seed", model, splits={"eval": 300}, max_eval_queries=60, seed=7
    )
    assert other_seed["candidate_model"]["metrics"] != record["candidate_model"]["metrics"]
    whole, whole_metrics, _ = run(
        tmp_path / "all", model, splits={"eval": 300}, max_eval_queries=300
    )
    assert whole_metrics == full_metrics and whole["candidate_model"]["sampling_error"] is None


def test_classic_baselines_are_fit_on_train_chosen_on_valid_and_can_gate(tmp_path):
    model = _save_model(str(tmp_path / "m1"), COLLAPSED, 11)
    splits = {"eval": 80, "train": 200, "valid": 80}
    record, metrics, _ = run(tmp_path / "a", model, splits=splits, thresholds={})
    found = record["classic_baselines"]
    assert set(found) == {"pca_whitened", "lda"}
    assert found["lda"]["fit_rows"] == 200 and found["lda"]["chosen_on"] == "valid"
    assert found["lda"]["metrics"]["map_at_r"] > 0.8  # the centres, found by LDA
    assert metrics["map_at_r"] < found["lda"]["metrics"]["map_at_r"]
    lift = record["lift_over_classic"]
    assert lift["value"] == pytest.approx(
        metrics["map_at_r"] - max(b["metrics"]["map_at_r"] for b in found.values()), abs=1e-6
    )
    assert not any("classic" in r for r in record["reasons"])  # reported, not required
    gated, _, _ = run(
        tmp_path / "b", model, splits=splits, thresholds={}, min_lift_over_classic=0.0
    )
    assert gated["blessed"] is False
    assert any("--min-lift-over-classic" in r for r in gated["reasons"])
    off, _, _ = run(tmp_path / "c", model, splits=splits, thresholds={}, classic_baselines=False)
    assert off["classic_baselines"] == {}


def test_only_the_fit_sample_of_the_train_split_is_embedded(tmp_path):
    model = _save_model(str(tmp_path / "m1"), IDENTITY, 11)
    splits = {"eval": 80, "train": 200, "valid": 80}
    record, _, _ = run(tmp_path, model, splits=splits, thresholds={}, classic_fit_rows=50)
    assert record["classic_baselines"]["lda"]["fit_rows"] == 50
    emb_dir = os.path.join(str(tmp_path / "evaluation"), executor.EMBEDDINGS_DIR)
    _, kept = embeddings.EmbeddingShards(emb_dir, "transformed_features", "train").index()
    folder = str(tmp_path / "examples" / "Split-train")
    rows = list(
        tf.data.TFRecordDataset(tf.io.gfile.glob(folder + "/*"), "GZIP").as_numpy_iterator()
    )
    every = embeddings.row_keys(rows, EvaluationSettings().seed)
    assert sorted(kept.tolist()) == sorted(every.tolist())[:50]  # the 50 smallest keys


def test_a_second_evaluation_reuses_the_first_ones_baselines(tmp_path):
    splits = {"eval": 80, "train": 200, "valid": 80}
    first_model = _save_model(str(tmp_path / "m1"), COLLAPSED, 11)
    first, _, _ = run(tmp_path / "a", first_model, splits=splits, thresholds={})
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "a" / "evaluation")
    examples = _examples(tmp_path / "a", {})  # the same folder: the same examples
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    second_model = _save_model(str(tmp_path / "m2"), IDENTITY, 12)
    second, metrics, _ = run(
        tmp_path / "b", second_model, baselines=evaluation, examples=examples, thresholds={}
    )
    assert second["raw_baselines"] == first["raw_baselines"]
    assert second["classic_baselines"] == first["classic_baselines"]
    assert second["baselines"]["reused_from"] == evaluation.uri
    assert "score_raw_features" not in second["seconds"]  # not scored again
    assert "score_raw_features" in first["seconds"]
    assert metrics["map_at_r"] > 0.8 and second["blessed"] is True
    assert second["lift_over_raw"]["value"] == pytest.approx(
        metrics["map_at_r"] - max(m["map_at_r"] for m in first["raw_baselines"].values()),
        abs=1e-6,
    )
    with pytest.raises(ValueError, match="max_eval_queries differ"):
        run(tmp_path / "c", second_model, baselines=evaluation, examples=examples,
            max_eval_queries=10)  # fmt: skip


def _record_production(production, version, metrics, scored_on):
    """What ``ProductionModel`` writes into its artifact, for a record the Pusher wrote."""
    from tfx_metric_learning.components.production import record as production_record
    from tfx_metric_learning.components.production import spec as production_spec

    record = production_record.make_record(
        version, production.uri, metrics=metrics, scored_on=scored_on
    )
    found = production_record.Production(production_spec.FOUND, "test", record, "digest")
    with open(os.path.join(production.uri, production_spec.FOUND_FILE), "w") as f:
        f.write(found.to_json())


def test_production_scores_are_reused_on_the_examples_and_settings_they_were_measured_on(
    tmp_path,
):
    candidate = _save_model(str(tmp_path / "m1"), COLLAPSED, 11)
    production = _save_model(str(tmp_path / "prod"), IDENTITY, 20)
    first, _, blessing = run(tmp_path / "a", candidate, production, thresholds={})
    assert "score_baseline" in first["seconds"]
    with open(os.path.join(blessing.uri, executor.BLESSING_METRICS_FILE)) as f:
        blessed_with = json.load(f)
    examples = _examples(tmp_path / "a", {})  # the same folder: the same examples
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    assert blessed_with["scored_on"] == first["scored_on"]
    assert first["scored_on"]["examples"] == examples.uri
    # production as the Pusher records it: the metrics its own evaluation measured, and on what
    measured = first["baseline_model"]["metrics"]
    _record_production(production, "7", measured, first["scored_on"])
    second, _, _ = run(tmp_path / "b", candidate, production, examples=examples, thresholds={})
    assert "score_baseline" not in second["seconds"]
    assert second["baseline_model"]["scores_reused_from"] == "the production record of version 7"
    assert second["baseline_model"]["metrics"] == measured
    assert (second["blessed"], second["reasons"]) == (first["blessed"], first["reasons"])
    # the gate reads the recorded scores: a record claiming a worse production blesses
    worse = {**measured, "map_at_r": 0.0}
    _record_production(production, "7", worse, first["scored_on"])
    third, _, _ = run(tmp_path / "c", candidate, production, examples=examples, thresholds={})
    assert not any("worse than the baseline" in r for r in third["reasons"])
    assert any("worse than the baseline" in r for r in first["reasons"])
    # scored on another query sample, or by a record without ``scored_on``: measured again
    for scored_on in ({**first["scored_on"], "seed": 3}, None):
        _record_production(production, "7", worse, scored_on)
        again, _, _ = run(tmp_path / "d", candidate, production, examples=examples, thresholds={})
        assert again["baseline_model"]["metrics"] == measured
        assert again["baseline_model"]["scores_reused_from"] is None


def test_the_candidates_queries_first_neighbours_are_kept_for_the_gallery(tmp_path):
    """``NEAREST_FILE`` is what the gallery's calibration would search on the kept shards."""
    from tfx_metric_learning.components.gallery_index import calibration

    model = _save_model(str(tmp_path / "m"), COLLAPSED, 3)  # ties everywhere, classes mixed
    run(tmp_path, model, splits={"eval": 300}, max_eval_queries=60)
    uri = str(tmp_path / "evaluation")
    with np.load(os.path.join(uri, executor.NEAREST_FILE)) as data:
        keys, similarity, correct = data["keys"], data["similarity"], data["correct"]
    shards = embeddings.EmbeddingShards(
        os.path.join(uri, executor.EMBEDDINGS_DIR), executor.CANDIDATE, "eval"
    )
    labels, all_keys, emb = shards.read()
    queries = embeddings.sample_rows(all_keys, 60)
    np.testing.assert_array_equal(keys, all_keys[queries])
    sims, right = calibration.nearest_neighbours(emb, labels, queries)
    np.testing.assert_array_equal(similarity, sims)
    np.testing.assert_array_equal(correct, right)
    assert 0 < correct.mean() < 1
