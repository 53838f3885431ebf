"""A Trainer killed after an epoch (SIGKILL to a real process) resumes with the next epoch.

Each run is ``run_fn`` in a fresh process with 2 logical CPUs (MirroredStrategy, 2
replicas) on digits prepared by the real TFT and PairGen. An uninterrupted run and a run
killed after epoch k then started again must reach the same weights.
"""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer_module.run_helpers import prepare_run_inputs, serialized
from tfx_metric_learning.trainer_module.settings import TrainingSettings

EPOCHS = 4
SAVED = re.compile(rf"epoch (\d+)/{EPOCHS} saved for resumption")
RESUMED = re.compile(r"resuming training after epoch (\d+)")


def _command(prepared, out, settings):
    examples, schema = prepared["modes"]["none"]
    return [
        sys.executable,
        "-m",
        "tests.trainer_module.preemption_check",
        examples.uri,
        schema.uri,
        prepared["graph"],
        str(out),
        settings.to_json(),
    ]


def _env():
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")


def _embeddings(out, rows):
    model = tf.saved_model.load(str(out / "serving"))
    return model.signatures["serve_examples"](examples=tf.constant(serialized(rows)))[
        "embedding"
    ].numpy()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_run_inputs(tmp_path_factory.mktemp("preemption"))


def test_killed_trainer_resumes_at_the_next_epoch_with_the_same_weights(prepared, tmp_path):
    def settings(state):
        return TrainingSettings(
            loss="triplet_semihard",
            epochs=EPOCHS,
            batch_size=32,
            hidden_units=[64],
            embedding_dim=16,
            seed=3,
            checkpoint_dir=str(state),
        )

    whole = subprocess.run(
        _command(prepared, tmp_path / "whole", settings(tmp_path / "state-whole")),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert SAVED.findall(whole.stderr) == ["1", "2", "3", "4"]

    killed_settings = settings(tmp_path / "state")
    proc = subprocess.Popen(
        _command(prepared, tmp_path / "killed", killed_settings),
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    log = []
    for line in proc.stderr:
        log.append(line)
        saved = SAVED.search(line)
        if saved and int(saved.group(1)) == 2:
            proc.send_signal(signal.SIGKILL)  # preempted right after epoch 2 was saved
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(log[-20:])
    saved_epochs = SAVED.findall("".join(log))
    assert saved_epochs == ["1", "2"]
    assert not (tmp_path / "killed" / "serving").exists()

    again = subprocess.run(
        _command(prepared, tmp_path / "killed", killed_settings),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    print("".join(line for line in again.stderr.splitlines(True) if "epoch" in line))
    assert RESUMED.findall(again.stderr) == ["2"]
    assert SAVED.findall(again.stderr) == ["3", "4"]  # epochs 1-2 are not trained again
    summary = json.load(open(tmp_path / "killed" / "run" / "training_summary.json"))
    assert summary["resumed_after_epoch"] == 2 and summary["num_replicas"] == 2
    # the state is removed once the model is exported
    assert os.listdir(tmp_path / "state") == []

    rows = prepared["raw_eval"][:100]
    np.testing.assert_allclose(
        _embeddings(tmp_path / "killed", rows), _embeddings(tmp_path / "whole", rows), atol=1e-5
    )
