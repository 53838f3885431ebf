"""The kit's loss contract: every built-in loss passes it, and a broken loss is named."""

import sys

import pytest
import tensorflow as tf

from tfx_metric_learning.testing import LossContractError, check_loss
from tfx_metric_learning.testing.losses import check_replicas
from tfx_metric_learning.trainer_module.losses import declare, registry
from tfx_metric_learning.trainer_module.losses.base import MetricLoss


@pytest.mark.parametrize("name", registry.names())
def test_every_built_in_loss_keeps_the_contract(name):
    values = check_loss(name, replicas=False)
    assert set(values) == {
        "random",
        "one_class",
        "all_distinct",
        "single_row",
        "duplicated",
        "zero",
    }


def test_two_replicas_equal_one_device_for_every_built_in_loss():
    assert check_replicas(registry.names()) == {n: [] for n in registry.names()}


@pytest.fixture
def scratch(monkeypatch):
    monkeypatch.setattr(declare, "REGISTERED", dict(declare.REGISTERED))
    monkeypatch.setattr(registry, "REGISTRY", declare.REGISTERED)


def _register(name, compute, **checks):
    cls = type(
        name,
        (MetricLoss,),
        {"__doc__": f"{name}, broken on purpose.", "compute": compute, "__module__": __name__},
    )
    return declare.register(name, **checks)(cls)


def test_a_loss_that_depends_on_batch_order_is_named(scratch):
    _register("first_row", lambda self, lab, emb, rl, re: tf.reduce_sum(emb[0] * emb[1]))
    with pytest.raises(LossContractError, match="batch order"):
        check_loss("first_row", replicas=False)


def test_a_loss_with_nan_on_degenerate_batches_is_named(scratch):
    def spread(self, labels, emb, rl, re):  # log of the spread: -inf for identical rows
        return -tf.math.log(tf.math.reduce_std(emb))

    _register("log_spread", spread)
    with pytest.raises(LossContractError, match="duplicated: the loss is inf"):
        check_loss("log_spread", replicas=False)


WIDEST_GAP = '''
import tensorflow as tf

from tfx_metric_learning.trainer_module.losses import base, declare


@declare.register("widest_gap")
class WidestGap(base.Loss):
    """The largest squared distance of the batch, taken per replica: no gathering."""

    def call(self, labels, y_pred):
        d = tf.reduce_sum(tf.square(y_pred[:, None] - y_pred[None]), -1)
        return tf.reduce_max(d)
'''


def test_a_loss_that_mines_per_replica_is_named(scratch, tmp_path, monkeypatch):
    """A ``Loss`` that skips the global gathering: one device and two replicas differ."""
    (tmp_path / "widest_gap_loss.py").write_text(WIDEST_GAP)
    monkeypatch.syspath_prepend(str(tmp_path))  # the fresh process imports it from there
    try:
        __import__("widest_gap_loss")
        found = check_replicas(["widest_gap"])
    finally:
        sys.modules.pop("widest_gap_loss", None)
    assert len(found["widest_gap"]) == 2, found
    assert found["widest_gap"][0].startswith("replicas: loss ")
    assert found["widest_gap"][1].startswith("replicas: gradients differ by ")
    with pytest.raises(LossContractError, match="replicas: loss"):
        check_loss("widest_gap")
