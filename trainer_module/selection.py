"""Model selection on the validation split: the Trainer keeps its epoch with the best MAP@R.

Musgrave et al. ("A Metric Learning Reality Check", ECCV 2020) select every model on a
validation set disjoint from the test data. ExampleGen's ``valid`` split is that set
(``components/example_gen/split_plan``: held-out training classes under ``unseen_classes``, a
stratified share of the training rows under ``seen_classes``); PairGen passes it through as
rows. Before training (epoch 0: the encoder as initialised, or as warm-started from the
production model) and after every epoch the encoder embeds those rows and ``validation
MAP@R`` is computed leave-one-out under cosine similarity (``retrieval.metrics``, the
evaluator's own code). The encoder weights of the best epoch (the earliest among equals) are
kept in variables, and are what the Trainer exports: when no epoch of training beats the
starting point on the validation data, the starting point is exported (for a ``residual``
encoder, the transformed inputs themselves; for a warm start, the production weights).

Bounds: the validation rows are held in memory, at most ``MAX_ROWS`` (a seeded uniform
sample beyond that, the rows with the ``MAX_ROWS`` smallest random keys); scoring costs one
forward pass and one blockwise k-NN search over them per epoch. The kept weights are one copy
of the encoder's. They live in a ``tf.Module`` that the resumable state saves with the
training model (``resume.EpochState``), so a Trainer killed and resumed still compares every
epoch, including those before the kill.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from tfx_metric_learning.core import keys
from tfx_metric_learning.core import records as tfrecords
from tfx_metric_learning.core.retrieval import metrics

MAX_ROWS = 20000
READ_BATCH = 4096
METRIC = "map_at_r"
LOG_KEY = "val_map_at_r"


def read_rows(
    file_patterns: list[str], seed: int, max_rows: int = MAX_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """``(features [N, F], labels [N])`` of Transform-output rows (gzipped TFRecords).

    At most ``max_rows``: every row gets a seeded random key and the ``max_rows`` smallest
    keys are kept, a uniform sample without replacement read in one streaming pass.
    """
    files = tfrecords.matching_files(file_patterns)
    spec = {
        keys.FEATURES: tf.io.VarLenFeature(tf.float32),
        keys.LABEL: tf.io.FixedLenFeature([], tf.string),
    }
    if not files:
        return np.zeros((0, 0), np.float32), np.zeros(0, dtype=object)
    dataset = tfrecords.parsed_batches(files, spec, READ_BATCH)
    rng = np.random.default_rng(seed)
    draws = np.zeros(0)
    features: list[np.ndarray] = []
    labels = np.zeros(0, dtype=object)
    for batch in dataset:
        dense = tf.sparse.to_dense(batch[keys.FEATURES]).numpy()
        draws = np.concatenate([draws, rng.random(len(dense))])
        features = [np.concatenate([*features, dense])] if features else [dense]
        labels = np.concatenate([labels, batch[keys.LABEL].numpy().astype(object)])
        if len(draws) > max_rows:
            keep = np.sort(np.argpartition(draws, max_rows)[:max_rows])
            draws, labels = draws[keep], labels[keep]
            features = [features[0][keep]]
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros(0, dtype=object)
    return features[0].astype(np.float32), np.asarray([x.decode() for x in labels])


def usable(labels: np.ndarray) -> bool:
    """Whether MAP@R is defined on these labels: two classes, one with two rows."""
    _, counts = np.unique(labels, return_counts=True)
    return len(counts) >= 2 and bool((counts >= 2).any())


def validation_map_at_r(encoder: tf.keras.Model, features: np.ndarray, labels) -> float:
    """Leave-one-out MAP@R of ``encoder``'s embeddings of ``features`` (cosine).

    The encoder runs eagerly, ``READ_BATCH`` rows at a time: ``predict`` would first trace a
    predict function through Keras' internals (about 8 s of autograph on the digits demo,
    for a few milliseconds of arithmetic).
    """
    embeddings = np.concatenate(
        [
            encoder(features[i : i + READ_BATCH], training=False).numpy()
            for i in range(0, len(features), READ_BATCH)
        ]
        or [np.zeros((0, encoder.output_shape[-1]), np.float32)]
    )
    return float(metrics.retrieval_metrics(embeddings, labels, [1])[METRIC])


class BestEpoch(tf.Module):
    """The best validation MAP@R so far, its epoch (-1: none yet) and a copy of its weights."""

    def __init__(self, encoder: tf.keras.Model):
        super().__init__(name="best_epoch")
        self.epoch = tf.Variable(-1, dtype=tf.int64, trainable=False, name="epoch")
        self.value = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="value")
        self.weights = [
            tf.Variable(tf.zeros_like(w), trainable=False, name=f"w{i}")
            for i, w in enumerate(encoder.weights)
        ]

    def offer(self, epoch: int, value: float, encoder: tf.keras.Model) -> bool:
        """Keeps ``encoder``'s weights when ``value`` beats the best so far; whether it did."""
        if not value > float(self.value.numpy()):
            return False
        self.epoch.assign(epoch)
        self.value.assign(value)
        for kept, w in zip(self.weights, encoder.get_weights(), strict=True):
            kept.assign(w)
        return True

    def restore_into(self, encoder: tf.keras.Model) -> None:
        """Sets ``encoder``'s weights to the kept ones (nothing kept: unchanged)."""
        if int(self.epoch.numpy()) >= 0:
            encoder.set_weights([w.numpy() for w in self.weights])


class KeepBestEpoch(tf.keras.callbacks.Callback):
    """Offers epoch 0 and each epoch to ``best``; validation MAP@R into the logs.

    Epoch 0 (before training) is offered when training starts at ``start_epoch`` 0 (a resumed
    training offered it before it was killed); each epoch's value is logged as
    ``val_map_at_r``. When training ends the encoder gets the best epoch's weights. Must come
    before the callback that saves the resumable state, so that the state holds this epoch's
    offer. An epoch after which training was stopped (non-finite loss or weights) is not
    scored.
    """

    def __init__(
        self,
        encoder,
        features: np.ndarray,
        labels: np.ndarray,
        best: BestEpoch,
        start_epoch: int = 0,
    ):
        super().__init__()
        self._encoder = encoder
        self._features = features
        self._labels = labels
        self._start_epoch = start_epoch
        self.best = best
        self.before_training: float | None = None

    def on_train_begin(self, logs=None):
        if self._start_epoch == 0:
            value = validation_map_at_r(self._encoder, self._features, self._labels)
            self.before_training = value
            self.best.offer(0, value, self._encoder)
            logging.info("before training: validation MAP@R %.4f", value)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        value = validation_map_at_r(self._encoder, self._features, self._labels)
        if logs is not None:
            logs[LOG_KEY] = value
        if self.best.offer(epoch + 1, value, self._encoder):
            logging.info("epoch %d: validation MAP@R %.4f, the best so far", epoch + 1, value)

    def on_train_end(self, logs=None):
        self.best.restore_into(self._encoder)
        logging.info(
            "kept epoch %d (validation MAP@R %.4f)",
            int(self.best.epoch.numpy()),
            float(self.best.value.numpy()),
        )
