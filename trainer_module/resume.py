"""Training that survives preemption: resumable state saved after every epoch.

After each epoch the Trainer saves the training model's weights (encoder, class head, loss
state such as XBM's memory), the optimizer's state and the number of epochs done with a
``tf.train.CheckpointManager`` in a state folder (``tf.io.gfile``: local, ``gs://``, any
filesystem TensorFlow knows). A Trainer killed after epoch k and started again on the same
inputs restores it and goes on with epoch k+1; its input stream skips the k x steps batches
already seen, so it trains on exactly the batches an uninterrupted run would and reaches the
same weights (to float tolerance; tested under MirroredStrategy with 2 replicas). The folder
is deleted once the model is exported, and so are the folders other trainings left there
(killed and never re-run with the same settings and inputs) once untouched for
``STALE_SECONDS``.

The state folder is ``<checkpoint_dir>/<key>``: ``key`` is a hash of the training settings
and the Trainer's inputs (the examples, the transform graph, the warm-start model), so that
only a run of the same training on the same data resumes, whatever execution (a local re-run,
a retried pod) picks it up. Written by hand rather than with Keras' ``BackupAndRestore``
because that restores the weights and the epoch but not the position in the input stream,
and it keys its folder by nothing.
"""

from __future__ import annotations

import hashlib
import json
import os

import tensorflow as tf
from absl import logging
from tf_keras.src.distribute import distributed_file_utils

EPOCH_KEY = "epochs_done"
# a state folder untouched this long belongs to a training that will not resume: 3 days, so a
# daily run's retry (or a weekend's) still finds its state
STALE_SECONDS = 3 * 24 * 3600


def remove_stale(checkpoint_dir: str, now: float, keep: str = "") -> list[str]:
    """Removes the stale state folders under ``checkpoint_dir`` but ``keep``; their paths.

    Stale: the newest file in the folder was modified more than ``STALE_SECONDS`` before
    ``now``. A folder without files is kept (its training may be starting).
    """
    if not checkpoint_dir or not tf.io.gfile.exists(checkpoint_dir):
        return []
    removed = []
    for name in tf.io.gfile.listdir(checkpoint_dir):
        folder = os.path.join(checkpoint_dir, name.rstrip("/"))
        if folder.rstrip("/") == keep.rstrip("/") or not tf.io.gfile.isdir(folder):
            continue
        times = [
            tf.io.gfile.stat(os.path.join(root, f)).mtime_nsec / 1e9
            for root, _, files in tf.io.gfile.walk(folder)
            for f in files
        ]
        if times and now - max(times) > STALE_SECONDS:  # an empty folder may be starting
            tf.io.gfile.rmtree(folder)
            removed.append(folder)
    return removed


def state_dir(checkpoint_dir: str, settings: dict, inputs: list[str]) -> str:
    """The state folder of one training (settings without ``checkpoint_dir``) on ``inputs``."""
    data = {k: v for k, v in settings.items() if k != "checkpoint_dir"}
    text = json.dumps({"settings": data, "inputs": sorted(inputs)}, sort_keys=True)
    return os.path.join(checkpoint_dir, hashlib.sha256(text.encode()).hexdigest()[:16])


class EpochState:
    """The resumable state of a training model and its optimizer in ``directory``."""

    def __init__(
        self,
        directory: str,
        model: tf.keras.Model,
        best: tf.Module | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        """``best``: the selection's kept epoch (``selection.BestEpoch``), saved alongside.

        With several workers (``strategy`` a ``MultiWorkerMirroredStrategy``) every worker
        restores from ``directory`` and saves, as saving may need all of them, but only the
        chief saves there: the others save into a temporary folder they remove (tf_keras'
        ``distributed_file_utils``, as Keras' ``BackupAndRestore`` does).
        """
        self.directory = directory
        self._strategy = strategy
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name=EPOCH_KEY)
        extra = {"best": best} if best is not None else {}
        checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, **{EPOCH_KEY: self.epochs_done}, **extra
        )
        self._read = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1)
        self._write = self._read
        if strategy is not None and not strategy.extended.should_checkpoint:
            self._write = tf.train.CheckpointManager(
                checkpoint,
                distributed_file_utils.write_dirpath(directory, strategy),
                max_to_keep=1,
            )

    def restore(self) -> int:
        """Restores the latest state, if any; returns the epochs it had done (0 when none)."""
        latest = self._read.latest_checkpoint
        if latest is None:
            return 0
        self._read.checkpoint.restore(latest).expect_partial()
        done = int(self.epochs_done.numpy())
        logging.info("resuming training after epoch %d from %s", done, latest)
        return done

    def save(self, epochs_done: int) -> None:
        """Saves the state after ``epochs_done`` epochs (the previous one is kept until then)."""
        self.epochs_done.assign(epochs_done)
        self._write.save(checkpoint_number=epochs_done)
        if self._write is not self._read:
            distributed_file_utils.remove_temp_dirpath(self.directory, self._strategy)

    def delete(self) -> None:
        """Removes the state folder (the training is done and exported)."""
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)


class SaveEachEpoch(tf.keras.callbacks.Callback):
    """Saves ``state`` at the end of every epoch, then logs that it did.

    An epoch after which training was stopped (non-finite loss or weights) is not saved: a
    restart must not resume from a broken state.
    """

    def __init__(self, state: EpochState, epochs: int):
        super().__init__()
        self._state = state
        self._epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        self._state.save(epoch + 1)
        logging.info("epoch %d/%d saved for resumption", epoch + 1, self._epochs)
