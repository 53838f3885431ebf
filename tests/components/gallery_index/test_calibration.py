"""The match threshold: the highest recall at the target precision, and the rates at it."""

import numpy as np
import pytest

from tfx_metric_learning.components.gallery_index import calibration


def test_the_threshold_keeps_the_target_precision_with_the_most_recall():
    sims = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0, 1, 0], bool)
    found = calibration.calibrate(sims, correct, target_precision=1.0)
    assert found.threshold == 0.85  # the three best are right; 0.8 is the first wrong one
    assert (found.precision, found.recall) == (1.0, 3 / 5)
    assert (found.false_accept_rate, found.false_reject_rate) == (0.0, 2 / 5)
    lower = calibration.calibrate(sims, correct, target_precision=0.8)
    assert lower.threshold == 0.7 and lower.precision == pytest.approx(4 / 5)
    assert lower.recall == pytest.approx(4 / 5) and lower.false_accept_rate == pytest.approx(1 / 3)
    assert lower.correct_at_1 == pytest.approx(5 / 8)
    assert lower.curve["threshold"] == sorted(lower.curve["threshold"])


def test_no_threshold_when_the_target_cannot_be_reached():
    sims = np.array([0.9, 0.8, 0.7])
    found = calibration.calibrate(sims, np.array([0, 1, 1], bool), target_precision=1.0)
    assert found.threshold == 0.7 or found.threshold is None
    none = calibration.calibrate(sims, np.array([0, 0, 0], bool), target_precision=0.5)
    assert none.threshold is None and none.precision is None and none.recall == 0.0
    with pytest.raises(ValueError, match="target precision must be in"):
        calibration.calibrate(sims, np.array([1, 1, 1], bool), target_precision=0)


def test_nearest_neighbours_leave_each_row_out():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], np.float32)
    labels = np.array(["a", "a", "b", "b", "b"])
    sims, correct = calibration.nearest_neighbours(emb, labels)
    # row 4 is as near to row 1 (a) as to row 3 (b): the tie goes to the lower row, a
    assert correct.tolist() == [True, True, True, True, False]
    assert (sims < 1.0 + 1e-6).all() and sims[0] > 0.99 and sims[4] == pytest.approx(0.7809, 1e-3)
