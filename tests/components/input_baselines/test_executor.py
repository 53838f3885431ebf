"""InputBaselines on real examples and a real Transform graph (TFT's Beam implementation).

The graph here computes what the test evaluator's model computes (``features`` = ``[x, y,
5]``), so the baselines it measures once per data must equal those an evaluation measures
from a model that embeds that graph, and an evaluator that reads them must decide as one
that measured them itself.
"""

import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from tests.components.retrieval_evaluator.test_executor import (
    COLLAPSED,
    IDENTITY,
    _examples,
    _save_model,
    run,
)
from tfx_metric_learning.components.input_baselines import executor, spec
from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
from tfx_metric_learning.testing import preprocessing as kit_preprocessing

SPLITS = {"eval": 80, "train": 200, "valid": 80}


def features_and_five(inputs):
    """What the test model's ``transform_features`` signature computes."""
    x, y = inputs["x"], inputs["y"]
    return {
        "features": tf.concat([x, y, tf.fill([tf.shape(x)[0], 1], 5.0)], axis=1),
        "label": inputs["label"],
    }


def transform_graph(tmp_path) -> str:
    folder = str(tmp_path / "transform_graph")
    rows = [{"x": 0.0, "y": 1.0, "label": "a"}, {"x": 1.0, "y": 0.0, "label": "b"}]
    kit_preprocessing.analyze_and_transform(features_and_five, rows, folder)
    return folder


def measure(tmp_path, examples, graph, **settings):
    out = standard_artifacts.ModelEvaluation()
    out.uri = str(tmp_path / "baselines")
    graph_artifact = standard_artifacts.TransformGraph()
    graph_artifact.uri = graph
    executor.Executor().Do(
        {spec.EXAMPLES_KEY: [examples], spec.TRANSFORM_GRAPH_KEY: [graph_artifact]},
        {spec.BASELINES_KEY: [out]},
        {
            spec.LABEL_COLUMN_KEY: "label",
            spec.SETTINGS_KEY: EvaluationSettings(**settings).to_json(),
        },
    )
    with open(os.path.join(out.uri, spec.BASELINES_FILE)) as f:
        return out, json.load(f)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Examples, InputBaselines' output and record, and an evaluation measuring its own."""
    tmp_path = tmp_path_factory.mktemp("input_baselines")
    examples = _examples(tmp_path, SPLITS)
    out, record = measure(tmp_path, examples, transform_graph(tmp_path), thresholds={})
    model = _save_model(str(tmp_path / "m1"), COLLAPSED, 11)
    own, _, _ = run(tmp_path / "own", model, examples=examples, thresholds={})
    return examples, out, record, own


def test_the_baselines_of_a_transform_graph_are_those_of_a_model_embedding_it(measured):
    _, out, record, own = measured
    baselines = record["baselines"]
    assert set(baselines["raw"]) == {"raw_features", "transformed_features"}
    assert set(baselines["classic"]) == {"pca_whitened", "lda"} == set(own["classic_baselines"])
    assert baselines["raw"] == own["baselines"]["raw"]
    assert baselines["classic"] == own["baselines"]["classic"]
    assert baselines["key"] == own["baselines"]["key"]
    assert "score_raw_features" in record["seconds"] and "embed" in record["seconds"]
    assert not os.path.exists(os.path.join(out.uri, spec.EMBEDDINGS_DIR))  # scratch removed


def test_an_evaluator_reading_them_scores_only_its_models_and_decides_the_same(measured, tmp_path):
    examples, out, _, own = measured
    model = _save_model(str(tmp_path / "m1"), COLLAPSED, 11)
    reading, _, _ = run(
        tmp_path / "reading", model, baselines=out, examples=examples, thresholds={}
    )
    assert reading["baselines"]["reused_from"] == out.uri
    assert [k for k in reading["seconds"] if k.startswith("score_")] == ["score_candidate"]
    for key in ("blessed", "reasons", "raw_baselines", "classic_baselines", "lift_over_raw"):
        assert reading[key] == own[key], key
    good = _save_model(str(tmp_path / "m2"), IDENTITY, 12)
    blessed, _, _ = run(tmp_path / "good", good, baselines=out, examples=examples, thresholds={})
    # the collapsed model separates worse than its inputs; the identity one as well as them
    assert reading["blessed"] is False and blessed["blessed"] is True


def test_baselines_of_other_settings_are_refused_by_the_evaluator(measured, tmp_path):
    examples, out, _, _ = measured
    model = _save_model(str(tmp_path / "m1"), IDENTITY, 11)
    with pytest.raises(ValueError, match="seed differ"):
        run(tmp_path / "r", model, baselines=out, examples=examples, thresholds={}, seed=7)


def test_a_transform_graph_gives_the_raw_baselines_only(tmp_path):
    from tfx_metric_learning.components.retrieval_evaluator import embeddings

    embed = embeddings._Embed(  # noqa: SLF001
        transform_graph(tmp_path), "label", embeddings.EMBED_SIGNATURE, 0, transform_graph=True
    )
    with pytest.raises(ValueError, match="raw baselines only"):
        embed.setup()
