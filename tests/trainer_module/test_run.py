"""run_fn with every registered loss on the digits (seen classes): trains without NaN, exports.

Real pieces up to the Trainer: TFT analyses and transforms the digits with the pipeline's
preprocessing_fn, the real PairGen executor builds each input mode, and the real run_fn
trains under MirroredStrategy and exports the raw-feature SavedModel, which is loaded back.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx_bsl.public import tfxio

from tests.trainer_module.run_helpers import FEATURES, fn_args_for, prepare_run_inputs, serialized
from tfx_metric_learning.components.pair_gen import spec as pair_gen_spec
from tfx_metric_learning.core.retrieval import metrics
from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module import datasets, distribution, guards, run, selection
from tfx_metric_learning.trainer_module import spec as trainer_spec
from tfx_metric_learning.trainer_module import warm_start as warm_start_lib
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.settings import TrainingSettings


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_run_inputs(tmp_path_factory.mktemp("run_fn"))


@pytest.mark.parametrize("name", registry.names())
def test_every_loss_trains_and_exports_without_nan(prepared, name, tmp_path):
    spec = registry.get_spec(name)
    training = TrainingSettings(
        loss=name,
        epochs=2,
        batch_size=64,
        train_steps=30,
        seed=0,
        embedding_dim=32,
        hidden_units=[64],
    )
    fn_args = fn_args_for(prepared, spec.pair_gen_mode, tmp_path, training.to_dict())
    run.run_fn(fn_args)
    summary = json.load(open(tmp_path / "run" / trainer_spec.SUMMARY_FILE))
    assert all(np.isfinite(summary["history"]["loss"])), summary["history"]
    assert summary["selection"]["split"] == "valid"
    kept = summary["selection"]  # 30 steps are one epoch: kept is 0 (untrained) or 1
    curve = [kept["before_training"], *summary["history"]["val_map_at_r"]]
    assert kept["kept_epoch"] == int(np.argmax(curve)) and kept["value"] == max(curve)
    model = tf.saved_model.load(str(tmp_path / "serving"))
    emb = model.signatures["serve_examples"](
        examples=tf.constant(serialized(prepared["raw_eval"]))
    )["embedding"].numpy()
    assert np.all(np.isfinite(emb))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    labels = [r["label"] for r in prepared["raw_eval"]]
    result = metrics.retrieval_metrics(emb, labels)
    print(f"{name}: map_at_r={result['map_at_r']:.3f} after {summary['total_steps']} steps")
    assert result["map_at_r"] > 0.2  # far above chance (0.1) even after 30 steps


def test_run_fn_stops_before_training_when_pair_gen_built_for_another_loss(prepared, tmp_path):
    training = TrainingSettings(loss="triplet", epochs=1, batch_size=64)
    fn_args = fn_args_for(prepared, "none", tmp_path, training.to_dict())
    with pytest.raises(
        guards.PairGenMismatchError,
        match="loss 'triplet' consumes triplets input, which PairGen builds in mode "
        "'triplets', but PairGen built mode 'none'",
    ):
        run.run_fn(fn_args)
    k_negatives = TrainingSettings(loss="triplet_k_negatives", loss_params={"num_negatives": 2})
    fn_args = fn_args_for(prepared, "triplets_k", tmp_path, k_negatives.to_dict())
    with pytest.raises(guards.PairGenMismatchError, match="num_negatives=2, but PairGen built 5"):
        run.run_fn(fn_args)
    assert not (tmp_path / "serving").exists() and not (tmp_path / "run").exists()


def test_run_fn_refuses_incomplete_training_settings(prepared, tmp_path):
    fn_args = fn_args_for(prepared, "none", tmp_path, {"loss": "triplet_semihard", "epochs": 1})
    with pytest.raises(SettingsError, match="must hold every setting; missing: loss_params"):
        run.run_fn(fn_args)


def _mode_inputs(prepared, mode):
    """``(file patterns, DataAccessor, schema, train rows)`` of PairGen's output in ``mode``."""
    examples, schema_artifact = prepared["modes"][mode]
    schema = datasets.load_schema(os.path.join(schema_artifact.uri, pair_gen_spec.SCHEMA_FILE))
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    stats = json.load(open(os.path.join(examples.uri, pair_gen_spec.STATS_FILE)))["splits"]["train"]
    return [os.path.join(examples.uri, "Split-train", "*")], accessor, schema, stats


@pytest.mark.parametrize("budget", [0, 2**30], ids=["streamed", "in_memory"])
def test_trainer_batches_line_up_with_pk_groups(prepared, budget):
    files, accessor, schema, stats = _mode_inputs(prepared, "pk_batches")
    spec = registry.get_spec("triplet_semihard")
    rows = stats["examples"]
    dataset = datasets.make_dataset(
        files, accessor, schema, spec, 64, seed=0, in_order=True, rows=rows, memory_budget=budget
    )
    assert stats["batches"] >= 3
    batches = list(dataset.take(stats["batches"] + 2))  # wraps around into the next epoch
    for _, labels in batches:
        _, counts = np.unique(labels.numpy(), return_counts=True)
        assert len(counts) == 8 and set(counts.tolist()) == {8}
    # in order, the rows held in memory are batched exactly as the files stream them
    streamed = datasets.make_dataset(files, accessor, schema, spec, 64, seed=0, in_order=True)
    for (x, y), (xs, ys) in zip(batches, streamed.take(len(batches)), strict=True):
        np.testing.assert_array_equal(x.numpy(), xs.numpy())
        np.testing.assert_array_equal(y.numpy(), ys.numpy())


def test_in_memory_batches_are_seeded_permutations_of_every_row():
    n, b = 10, 3
    features = tf.reshape(tf.range(n * 2, dtype=tf.float32), [n, 2])
    labels = tf.range(n, dtype=tf.int64)

    def passes(seed, shuffle=True, count=3):
        ds = datasets.in_memory_batches((features, labels), b, seed, shuffle)
        batches = list(ds.take(count * (n // b)))
        for x, y in batches:
            np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())  # rows kept whole
        rows = [y.numpy() for _, y in batches]
        return [np.concatenate(rows[i * 3 : i * 3 + 3]) for i in range(count)]

    first = passes(0)
    for one in first:  # each pass: 9 distinct rows of the 10, the 10th left for later
        assert len(one) == 9 and len(set(one.tolist())) == 9
    assert not np.array_equal(first[0], first[1])  # every pass its own permutation
    assert all(np.array_equal(a, c) for a, c in zip(first, passes(0), strict=True))
    assert not np.array_equal(first[0], passes(1)[0])
    assert all(np.array_equal(p, np.arange(9)) for p in passes(0, shuffle=False))


def test_a_split_within_the_memory_budget_is_read_once_and_holds_every_row(prepared, monkeypatch):
    files, accessor, schema, stats = _mode_inputs(prepared, "none")
    spec = registry.get_spec("triplet_semihard")
    rows, batch = stats["examples"], 64
    reads = []
    real_read = datasets.read_into_memory
    monkeypatch.setattr(datasets, "read_into_memory", lambda *a: reads.append(a) or real_read(*a))
    streamed = datasets.make_dataset(files, accessor, schema, spec, batch, 0, rows=rows)
    per_row = datasets.row_bytes(streamed.element_spec)
    assert per_row == len(FEATURES) * 4 + 8  # float32 features and the int64 label key
    tight = datasets.make_dataset(
        files, accessor, schema, spec, batch, 0, rows=rows, memory_budget=rows * per_row - 1
    )
    assert reads == []  # neither the default nor a budget one byte short reads into memory
    held = datasets.make_dataset(
        files, accessor, schema, spec, batch, 0, rows=rows, memory_budget=rows * per_row
    )
    assert len(reads) == 1
    one_pass = [x.numpy() for x, _ in held.take(rows // batch)]
    seen = {r.tobytes() for r in np.concatenate(one_pass)}
    every = {r.tobytes() for x, _ in streamed.take(4 * rows // batch) for r in x.numpy()}
    assert len(seen) == rows // batch * batch and seen <= every
    assert {r.tobytes() for x, _ in tight.take(2) for r in x.numpy()} <= every


def test_strategy_choice_follows_tf_config(monkeypatch):
    two = json.dumps(
        {
            "cluster": {"worker": ["localhost:1", "localhost:2"]},
            "task": {"type": "worker", "index": 0},
        }
    )
    assert distribution.workers_in(two) == 2
    assert (
        distribution.workers_in(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}})) == 2
    )
    assert distribution.workers_in(None) == 1
    training = TrainingSettings()
    monkeypatch.setenv("TF_CONFIG", two)
    assert datasets.memory_budget(training) == 0  # each worker streams its shard
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert datasets.memory_budget(training) == training.in_memory_mb * 2**20
    # one logical device in this process: no distribution strategy (TensorFlow's default)
    strategy = distribution.make_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert distribution.describe_strategy(strategy) == ("none", [distribution.local_devices()[0]])
    mirrored = tf.distribute.MirroredStrategy(devices=distribution.local_devices())
    assert distribution.describe_strategy(mirrored)[0] == "MirroredStrategy"


def test_run_fn_refuses_to_export_a_model_whose_weights_blew_up(prepared, tmp_path):
    # a learning rate this large sends the weights to inf/NaN within the first steps; the
    # mining loss masks NaN distances, so the logged loss alone would not show it
    training = TrainingSettings(
        loss="triplet_semihard",
        learning_rate=1e30,
        epochs=2,
        batch_size=64,
        train_steps=10,
        embedding_dim=8,
        hidden_units=[16],
    )
    fn_args = fn_args_for(prepared, "none", tmp_path, training.to_dict())
    with pytest.raises(
        guards.NonFiniteModelError, match="learning rate 1e\\+30.*nothing was exported"
    ):
        run.run_fn(fn_args)
    assert not (tmp_path / "serving").exists()


def test_finite_model_check_refuses_nan_weights_and_embeddings():
    encoder = tf.keras.Sequential([tf.keras.layers.Dense(4, input_shape=(3,))])
    features = tf.ones([5, 3])
    encoder.layers[0].kernel.assign(tf.fill([3, 4], float("nan")))
    with pytest.raises(guards.NonFiniteModelError, match="weights are not finite"):
        guards.check_finite_model(encoder, features, "test")
    encoder.layers[0].kernel.assign(tf.ones([3, 4]))  # finite, but not unit-length output
    with pytest.raises(guards.NonFiniteModelError, match="5 non-unit embeddings of 5"):
        guards.check_finite_model(encoder, features, "test")


def test_served_model_treats_absent_and_non_finite_inputs_as_missing(prepared, tmp_path):
    training = TrainingSettings(
        loss="triplet_semihard", epochs=1, batch_size=64, train_steps=5, hidden_units=[32]
    )
    run.run_fn(fn_args_for(prepared, "none", tmp_path, training.to_dict()))
    model = tf.saved_model.load(str(tmp_path / "serving"))
    row = dict(prepared["raw_eval"][0])

    def by_examples(values):
        ex = tf.train.Example()
        for name, value in values.items():
            if name in FEATURES:
                ex.features.feature[name].float_list.value.append(value)
        out = model.signatures["serve_examples"](examples=tf.constant([ex.SerializeToString()]))
        return out["embedding"].numpy()[0]

    def by_tensors(values):
        inputs = {n: tf.constant([values.get(n, float("nan"))], tf.float32) for n in FEATURES}
        return model.signatures["serving_default"](**inputs)["embedding"].numpy()[0]

    missing = by_tensors({**row, "pixel_0_2": float("nan")})
    absent = {k: v for k, v in row.items() if k != "pixel_0_2"}
    np.testing.assert_allclose(by_examples(absent), missing, atol=1e-6)
    np.testing.assert_allclose(by_tensors(absent), missing, atol=1e-6)
    for value in (float("inf"), float("-inf")):
        np.testing.assert_allclose(by_tensors({**row, "pixel_0_2": value}), missing, atol=1e-6)
        np.testing.assert_allclose(by_examples({**row, "pixel_0_2": value}), missing, atol=1e-6)
    for value in (1e38, -1e38, 3.4e38):
        emb = by_tensors({**row, "pixel_0_3": value})
        assert np.all(np.isfinite(emb)), (value, emb)
        assert abs(np.linalg.norm(emb) - 1.0) < 1e-4, (value, emb)


def test_warm_start_begins_from_the_base_model_weights(prepared, tmp_path):
    small = {"epochs": 1, "batch_size": 64, "train_steps": 2, "hidden_units": [32]}
    run.run_fn(
        fn_args_for(prepared, "none", tmp_path / "base", TrainingSettings(**small).to_dict())
    )
    base_dir = str(tmp_path / "base" / "serving")
    # a learning rate this small leaves the weights where they start
    still = TrainingSettings(**small, learning_rate=1e-12, seed=99, warm_start=True)
    rows = serialized(prepared["raw_eval"][:50])

    def embed(folder):
        model = tf.saved_model.load(folder)
        return model.signatures["serve_examples"](examples=tf.constant(rows))["embedding"].numpy()

    warm = fn_args_for(prepared, "none", tmp_path / "warm", still.to_dict())
    warm.base_model = base_dir
    run.run_fn(warm)
    np.testing.assert_allclose(
        embed(str(tmp_path / "warm" / "serving")), embed(base_dir), atol=1e-5
    )
    summary = json.load(open(tmp_path / "warm" / "run" / trainer_spec.SUMMARY_FILE))
    assert summary["warm_started_from"] == base_dir
    cold = fn_args_for(prepared, "none", tmp_path / "cold", still.to_dict())  # no base model yet
    run.run_fn(cold)
    assert np.abs(embed(str(tmp_path / "cold" / "serving")) - embed(base_dir)).max() > 0.1
    wider = TrainingSettings(**{**small, "hidden_units": [48]}, warm_start=True)
    mismatch = fn_args_for(prepared, "none", tmp_path / "wider", wider.to_dict())
    mismatch.base_model = base_dir
    with pytest.raises(warm_start_lib.WarmStartError, match=r"is \(64, 32\), not \(64, 48\)"):
        run.run_fn(mismatch)
    deeper = TrainingSettings(**{**small, "hidden_units": [32, 32]}, warm_start=True)
    mismatch = fn_args_for(prepared, "none", tmp_path / "deeper", deeper.to_dict())
    mismatch.base_model = base_dir
    with pytest.raises(warm_start_lib.WarmStartError, match=r"it has 4 weights, this encoder 6"):
        run.run_fn(mismatch)


def _exported_valid_map_at_r(prepared, tmp_path) -> float:
    """MAP@R of the exported model (raw rows in, as served) on the validation rows."""
    model = tf.saved_model.load(str(tmp_path / "serving"))
    emb = model.signatures["serve_examples"](
        examples=tf.constant(serialized(prepared["raw_valid"]))
    )["embedding"].numpy()
    labels = [r["label"] for r in prepared["raw_valid"]]
    return metrics.retrieval_metrics(emb, labels)["map_at_r"]


def test_the_exported_model_is_the_epoch_with_the_best_validation_map_at_r(prepared, tmp_path):
    # the best epoch's weights are what is exported (whichever it is here; test_selection.py
    # covers a best epoch that is not the last)
    training = TrainingSettings(
        loss="triplet_semihard",
        learning_rate=0.03,
        epochs=5,
        batch_size=64,
        seed=0,
        embedding_dim=16,
        hidden_units=[64],
    )
    run.run_fn(fn_args_for(prepared, "none", tmp_path, training.to_dict()))
    summary = json.load(open(tmp_path / "run" / trainer_spec.SUMMARY_FILE))
    curve = summary["history"]["val_map_at_r"]
    kept = summary["selection"]
    assert len(curve) == 5 and kept["validation_rows"] == len(prepared["raw_valid"])
    curve = [kept["before_training"], *curve]
    assert kept["kept_epoch"] == int(np.argmax(curve)), curve
    assert kept["value"] == pytest.approx(max(curve))
    assert _exported_valid_map_at_r(prepared, tmp_path) == pytest.approx(max(curve), abs=1e-5)


def test_a_residual_encoder_starts_from_its_inputs_and_is_exported_trained(prepared, tmp_path):
    training = TrainingSettings(
        loss="supcon", encoder="residual", epochs=2, batch_size=64, seed=0, hidden_units=[64]
    )
    fn_args = fn_args_for(prepared, "none", tmp_path, training.to_dict())
    run.run_fn(fn_args)
    kept = json.load(open(tmp_path / "run" / trainer_spec.SUMMARY_FILE))["selection"]
    # epoch 0 is the transformed input itself (embedding_dim 64 = the 64 pixels)
    features, labels = selection.read_rows(fn_args.eval_files, seed=0)
    inputs = metrics.retrieval_metrics(features, labels, [1])["map_at_r"]
    assert kept["before_training"] == pytest.approx(inputs, abs=1e-5)
    assert _exported_valid_map_at_r(prepared, tmp_path) == pytest.approx(kept["value"], abs=1e-5)


@pytest.mark.parametrize("mode", ["none", "triplets_k", "pk_batches"])
def test_read_into_memory_holds_the_rows_tfx_data_accessor_reads(prepared, mode):
    """The same tensors as one pass through TFX's DataAccessor (whose order is per machine)."""
    files, accessor, schema, stats = _mode_inputs(prepared, mode)
    spec = registry.get_spec("triplet_k_negatives" if mode == "triplets_k" else "triplet_semihard")
    held = datasets.read_into_memory(files, schema, spec)
    one_pass = accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=100, shuffle=False, num_epochs=1),
        schema,
    ).map(datasets._to_model_inputs(spec))
    parts = list(one_pass)
    reference = tf.nest.map_structure(lambda *p: tf.concat(p, axis=0), *parts)

    def rows(columns):  # every row's bytes, across the inputs, as a sorted list
        flat = [c.numpy().reshape(len(c), -1) for c in tf.nest.flatten(columns)]
        return sorted(b"".join(c[i].tobytes() for c in flat) for i in range(len(flat[0])))

    assert len(tf.nest.flatten(held)[1]) == stats["examples"]
    assert rows(held) == rows(reference)
