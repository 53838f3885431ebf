"""Model selection on the validation split: reading rows, keeping and restoring the best epoch."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.core import keys
from tfx_metric_learning.core.retrieval import metrics
from tfx_metric_learning.trainer_module import resume, selection


def _write_rows(path, features, labels):
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(path, options) as writer:
        for x, y in zip(features, labels, strict=True):
            ex = tf.train.Example()
            ex.features.feature[keys.FEATURES].float_list.value.extend(x)
            ex.features.feature[keys.LABEL].bytes_list.value.append(y.encode())
            writer.write(ex.SerializeToString())


def test_read_rows_keeps_a_seeded_uniform_sample_of_at_most_max_rows(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 3)).astype(np.float32)
    labels = [f"c{i % 7}" for i in range(500)]
    _write_rows(str(tmp_path / "a.gz"), features[:300], labels[:300])
    _write_rows(str(tmp_path / "b.gz"), features[300:], labels[300:])
    pattern = [str(tmp_path / "*.gz")]
    x, y = selection.read_rows(pattern, seed=1)
    assert x.shape == (500, 3) and len(y) == 500  # under the bound: every row
    x, y = selection.read_rows(pattern, seed=1, max_rows=120)
    again, _ = selection.read_rows(pattern, seed=1, max_rows=120)
    other, _ = selection.read_rows(pattern, seed=2, max_rows=120)
    assert x.shape == (120, 3) and np.array_equal(x, again) and not np.array_equal(x, other)
    # every kept row is a written row with its own label, none twice
    index = {tuple(np.round(f, 5)): lab for f, lab in zip(features, labels, strict=True)}
    kept = [tuple(np.round(f, 5)) for f in x]
    assert len(set(kept)) == 120 and all(index[k] == lab for k, lab in zip(kept, y, strict=True))
    # rows come from both files (the sample is not the first rows read)
    assert any(k in {tuple(np.round(f, 5)) for f in features[300:]} for k in kept)


def test_usable_needs_two_classes_and_a_same_class_pair():
    assert selection.usable(np.array(["a", "a", "b"]))
    assert not selection.usable(np.array(["a", "b", "c"]))
    assert not selection.usable(np.array(["a", "a"]))


def _encoder():
    inputs = tf.keras.Input((2,))
    outputs = tf.keras.layers.UnitNormalization()(
        tf.keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs)
    )
    return tf.keras.Model(inputs, outputs)


def _four_clusters(n=80, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
    labels = np.array(["abcd"[i % 4] for i in range(n)])
    x = centres[[i % 4 for i in range(n)]] + rng.normal(0, 0.3, (n, 2)).astype(np.float32)
    return x, labels


def test_the_best_epoch_is_kept_and_restored_when_a_later_one_is_worse():
    encoder = _encoder()
    x, y = _four_clusters()
    best = selection.BestEpoch(encoder)
    callback = selection.KeepBestEpoch(encoder, x, y, best)
    callback.set_model(tf.keras.Sequential())  # stop_training is read from the fit model
    encoder.set_weights([np.array([[1, 1], [1, 1]], np.float32)])  # epoch 0: collapsed
    callback.on_train_begin()
    assert int(best.epoch.numpy()) == 0 and callback.before_training < 0.8
    encoder.set_weights([np.eye(2, dtype=np.float32)])
    good = encoder.get_weights()
    logs = {}
    callback.on_epoch_end(0, logs)  # epoch 1: the identity map separates the clusters
    first = logs[selection.LOG_KEY]
    assert first == pytest.approx(selection.validation_map_at_r(encoder, x, y)) and first > 0.8
    encoder.set_weights([np.array([[1, 1], [1, 1]], np.float32)])  # epoch 2: collapsed
    callback.on_epoch_end(1, logs)
    assert logs[selection.LOG_KEY] < first - 0.2
    encoder.set_weights([np.array([[1, 0], [0, 1]], np.float32)])  # epoch 3: the same as 1
    callback.on_epoch_end(2, logs)  # a tie keeps the earlier epoch
    encoder.set_weights([np.array([[1, 1], [1, 1]], np.float32)])
    callback.on_train_end()
    assert int(best.epoch.numpy()) == 1 and float(best.value.numpy()) == pytest.approx(first)
    np.testing.assert_array_equal(encoder.get_weights()[0], good[0])


def test_the_kept_epoch_survives_a_restart_through_the_resumable_state(tmp_path):
    encoder = _encoder()
    x, y = _four_clusters()
    model = tf.keras.Sequential([encoder])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.1), loss="mse")
    best = selection.BestEpoch(encoder)
    state = resume.EpochState(str(tmp_path / "state"), model, best=best)
    assert best.offer(1, 0.75, encoder)
    kept = encoder.get_weights()[0].copy()
    state.save(1)
    # a new process: a fresh encoder, model and BestEpoch restored from the folder
    encoder2 = _encoder()
    encoder2.set_weights([np.zeros((2, 2), np.float32)])
    model2 = tf.keras.Sequential([encoder2])
    model2.compile(optimizer=tf.keras.optimizers.Adam(0.1), loss="mse")
    best2 = selection.BestEpoch(encoder2)
    assert resume.EpochState(str(tmp_path / "state"), model2, best=best2).restore() == 1
    assert int(best2.epoch.numpy()) == 1 and float(best2.value.numpy()) == 0.75
    assert not best2.offer(2, 0.7, encoder2)  # worse than the epoch before the restart
    best2.restore_into(encoder2)
    np.testing.assert_array_equal(encoder2.get_weights()[0], kept)
    assert os.path.isdir(tmp_path / "state")


def test_validation_map_at_r_is_the_evaluators_metric():
    encoder = _encoder()
    x, y = _four_clusters()
    emb = encoder(x).numpy()
    assert selection.validation_map_at_r(encoder, x, y) == pytest.approx(
        metrics.retrieval_metrics(emb, y, [1])["map_at_r"]
    )


def test_the_starting_point_is_exported_when_no_epoch_beats_it():
    encoder = _encoder()  # identity: separates the clusters before any training
    x, y = _four_clusters()
    best = selection.BestEpoch(encoder)
    callback = selection.KeepBestEpoch(encoder, x, y, best)
    callback.set_model(tf.keras.Sequential())
    start = encoder.get_weights()
    callback.on_train_begin()
    encoder.set_weights([np.array([[1, 1], [1, 1]], np.float32)])  # training collapsed it
    callback.on_epoch_end(0, {})
    callback.on_train_end()
    assert int(best.epoch.numpy()) == 0
    np.testing.assert_array_equal(encoder.get_weights()[0], start[0])
    # a resumed training does not offer its restored weights as epoch 0
    resumed = selection.BestEpoch(encoder)
    selection.KeepBestEpoch(encoder, x, y, resumed, start_epoch=3).on_train_begin()
    assert int(resumed.epoch.numpy()) == -1
