"""Inputs of run_fn built with the real pieces: TFT on the digits, PairGen in every mode."""

import os

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils, standard_artifacts

from tests.transform_helpers import analyze_and_transform, write_splits
from tfx_metric_learning.components.pair_gen import executor as pair_gen
from tfx_metric_learning.components.pair_gen import spec
from tfx_metric_learning.components.pair_gen.settings import PairSettings

FEATURES = [f"pixel_{i}_{j}" for i in range(8) for j in range(8)]
SPLITS = ("train", "eval", "valid")


def prepare_run_inputs(base) -> dict:
    """Digits through the real preprocessing_fn and PairGen (every mode) under ``base``."""
    digits = load_digits()
    rows = [
        {name: float(v) for name, v in zip(FEATURES, x, strict=True)} | {"label": str(int(y))}
        for x, y in zip(digits.data, digits.target, strict=True)
    ]
    tenth = np.arange(len(rows)) % 10
    is_eval = tenth >= 7
    split_of = np.where(is_eval, "eval", np.where(tenth == 6, "valid", "train"))
    transformed = analyze_and_transform(rows, FEATURES, str(base / "transform_graph"))
    write_splits(
        str(base / "transformed"),
        {
            name: [t for t, s in zip(transformed, split_of, strict=True) if s == name]
            for name in SPLITS
        },
    )
    examples = standard_artifacts.Examples()
    examples.uri = str(base / "transformed")
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(base / "transform_graph")
    outputs = {}
    for mode in ("none", "pairs", "triplets", "triplets_k", "pk_batches"):
        out = standard_artifacts.Examples()
        out.uri = str(base / mode / "examples")
        schema = standard_artifacts.Schema()
        schema.uri = str(base / mode / "schema")
        pair_gen.Executor().Do(
            {"transformed_examples": [examples], "transform_graph": [graph]},
            {"examples": [out], "schema": [schema]},
            {
                spec.SETTINGS_KEY: PairSettings(
                    mode=mode,
                    triplets_per_anchor=2,
                    num_negatives=5,
                    seed=1,
                    pk_classes=8,
                    pk_examples=8,
                ).to_json()
            },
        )
        outputs[mode] = (out, schema)
    raw = {name: [r for r, s in zip(rows, split_of, strict=True) if s == name] for name in SPLITS}
    return {
        "base": base,
        "graph": graph.uri,
        "modes": outputs,
        "raw_eval": raw["eval"],
        "raw_valid": raw["valid"],
    }


def serialized(rows):
    out = []
    for r in rows:
        ex = tf.train.Example()
        for name in FEATURES:
            ex.features.feature[name].float_list.value.append(r[name])
        out.append(ex.SerializeToString())
    return out


def fn_args_for(prepared, mode, tmp_path, custom_config):
    """run_fn's arguments on PairGen's ``mode`` output; outputs under ``tmp_path``."""
    examples, schema = prepared["modes"][mode]
    return fn_args_from(examples.uri, schema.uri, prepared["graph"], str(tmp_path), custom_config)


def fn_args_from(examples_uri, schema_uri, graph, out_dir, custom_config):
    """run_fn's arguments from folders (what a fresh process gets); outputs under ``out_dir``."""
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    return fn_args_utils.FnArgs(
        train_files=[os.path.join(examples_uri, "Split-train", "*")],
        # as the pipeline wires it: the Trainer's eval split is the validation split
        eval_files=[os.path.join(examples_uri, "Split-valid", "*")],
        schema_path=os.path.join(schema_uri, spec.SCHEMA_FILE),
        transform_output=graph,
        transform_graph_path=graph,
        serving_model_dir=os.path.join(out_dir, "serving"),
        model_run_dir=os.path.join(out_dir, "run"),
        data_accessor=fn_args_utils.DataAccessor(
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
            record_batch_factory=None,
            data_view_decode_fn=None,
        ),
        custom_config=custom_config,
    )
