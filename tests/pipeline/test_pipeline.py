"""The pipeline's assembly, without running it: which components, wired how, with which settings."""

import json

import pytest

from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec
from tfx_metric_learning.pipeline import pipeline as pipeline_lib
from tfx_metric_learning.pipeline.candidates import Candidate
from tfx_metric_learning.pipeline.config import PipelineConfig

RUN_ORDER = [
    "FileBasedExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "DataValidator",
    "ProductionModel",
    "Transform",
    "InputBaselines",
    "PairGen",
    "Trainer",
    "RetrievalEvaluator",
    "GalleryIndex",
    "Pusher",
]


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n")
    return str(path)


def _by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_a_run_has_every_stage_wired_by_name(tmp_path, csv):
    pipeline = pipeline_lib.create_pipeline(PipelineConfig(pipeline_root=str(tmp_path)), csv)
    ids = [c.id for c in pipeline.components]
    assert sorted(ids) == sorted(RUN_ORDER)
    # TFX orders them topologically: each after what it reads
    main_line = [i for i in ids if i != "ProductionModel"]
    assert main_line == [i for i in RUN_ORDER if i != "ProductionModel"]
    by_id = _by_id(pipeline)
    evaluator, gallery, pusher = (by_id[n] for n in RUN_ORDER[-3:])
    # the evaluator and the GalleryIndex read ExampleGen's examples and the Trainer's model;
    # the Pusher pushes with the evaluator's blessing and the gallery's index
    for component in (evaluator, gallery):
        assert component.inputs["examples"].producer_component_id == "FileBasedExampleGen"
        assert component.inputs["model"].producer_component_id == "Trainer"
    assert evaluator.inputs["baseline_model"].producer_component_id == "ProductionModel"
    # the input baselines come from their own component, fed by the data and Transform only
    assert evaluator.inputs["baselines"].producer_component_id == "InputBaselines"
    baselines = by_id["InputBaselines"]
    assert {k: ch.producer_component_id for k, ch in baselines.inputs.items()} == {
        "examples": "FileBasedExampleGen",
        "transform_graph": "Transform",
    }
    assert baselines.exec_properties["settings"] == evaluator.exec_properties["settings"]
    # the gallery reads the evaluation of its model (its eval-split embeddings, neighbours)
    for key in (gallery_spec.BLESSING_KEY, gallery_spec.EVALUATION_KEY):
        assert gallery.inputs[key].producer_component_id == "RetrievalEvaluator"
    assert pusher.inputs["model_blessing"].producer_component_id == "RetrievalEvaluator"
    assert pusher.inputs[gallery_spec.GALLERY_INDEX_KEY].producer_component_id == "GalleryIndex"


@pytest.mark.parametrize(
    ("validation_fraction", "trainer_eval"), [(0.2, ["valid"]), (0.0, ["eval"])]
)
def test_transform_writes_only_the_splits_pair_gen_and_the_trainer_read(
    tmp_path, csv, validation_fraction, trainer_eval
):
    """The eval split is read raw by the evaluator: transformed only when the Trainer names it."""
    config = PipelineConfig(
        pipeline_root=str(tmp_path),
        ingest=IngestSettings(validation_fraction=validation_fraction),
    )
    by_id = _by_id(pipeline_lib.create_pipeline(config, csv))
    splits = json.loads(by_id["Transform"].exec_properties["splits_config"])
    assert splits == {"analyze": ["train"], "transform": ["train", *trainer_eval]}
    assert json.loads(by_id["Trainer"].exec_properties["eval_args"])["splits"] == trainer_eval
    # what reads the eval split reads ExampleGen's examples, not Transform's
    for name in ("InputBaselines", "RetrievalEvaluator", "GalleryIndex"):
        assert by_id[name].inputs["examples"].producer_component_id == "FileBasedExampleGen"


def test_without_the_gallery_index_the_pusher_pushes_the_model_alone(tmp_path, csv):
    config = PipelineConfig(pipeline_root=str(tmp_path))
    config.gallery = config.gallery.__class__(gallery_index=False)
    by_id = _by_id(pipeline_lib.create_pipeline(config, csv))
    assert "GalleryIndex" not in by_id
    assert gallery_spec.GALLERY_INDEX_KEY not in by_id["Pusher"].inputs


def test_runtime_parameters_replace_the_compiled_settings_of_their_stage(tmp_path, csv):
    config = PipelineConfig(pipeline_root=str(tmp_path))
    placeholder = '{"from": "runtime"}'
    runtime = pipeline_lib.Runtime(config, {"evaluation": placeholder})
    assert runtime.settings("evaluation") == placeholder
    assert runtime.settings("validation") is config.validation
    assert runtime.override("training") is None
    assert runtime.training() == config.training.resolved().to_dict()
    with pytest.raises(ValueError, match=r"unknown runtime parameter\(s\) \['bogus'\]"):
        pipeline_lib.create_pipeline(config, csv, runtime_parameters={"bogus": "1"})


def test_a_comparison_has_one_branch_per_candidate_and_seed_and_shares_pair_gen(tmp_path, csv):
    config = PipelineConfig(pipeline_root=str(tmp_path))
    candidates = [Candidate("triplet_semihard"), Candidate("supcon")]
    pipeline = pipeline_lib.create_compare_pipeline(config, csv, candidates, seeds=[1, 2])
    ids = [c.id for c in pipeline.components]
    trainers = sorted(i for i in ids if i.startswith("Trainer_"))
    assert len(trainers) == 4 and len(set(trainers)) == 4
    evaluators = [i for i in ids if i.startswith("RetrievalEvaluator_")]
    assert len(evaluators) == 4
    # one InputBaselines for every branch and the final evaluation
    for evaluator in [*evaluators, "RetrievalEvaluator"]:
        reads = _by_id(pipeline)[evaluator].inputs["baselines"]
        assert reads.producer_component_id == "InputBaselines", evaluator
    board = _by_id(pipeline)["Leaderboard"]
    branches = json.loads(board.exec_properties["branches"])
    assert sorted((b["candidate"], b["seed"]) for b in branches) == sorted(
        (c.label, s) for c in candidates for s in (1, 2)
    )
    # each branch's evaluation channel comes from that branch's evaluator
    producers = {
        k: ch.producer_component_id
        for k, ch in board.inputs.items()
        if k.startswith(evaluator_spec.EVALUATION_KEY)
    }
    assert sorted(producers.values()) == sorted(evaluators)
    # a PairGen per distinct (mode, seed), shared by the branches that need the same data
    assert len([i for i in ids if i.startswith("PairGen_")]) <= 4
