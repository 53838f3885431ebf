"""A loss declares itself once: name by decorator, the rest read from its class."""

import inspect

import pytest
import tensorflow as tf

from tfx_metric_learning.core.stage_settings import positive
from tfx_metric_learning.trainer_module.losses import declare, registry
from tfx_metric_learning.trainer_module.losses.base import Loss, MetricLoss
from tfx_metric_learning.trainer_module.losses.declare import Check, register


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test leave the real registry as it was."""
    monkeypatch.setattr(declare, "REGISTERED", dict(declare.REGISTERED))
    return declare


def test_parameters_defaults_family_and_context_come_from_the_class(scratch_registry):
    @register("scratch_loss", scale=Check(positive, "a scale"))
    class ScratchLoss(MetricLoss):
        """A scratch loss for this test: ``scale * 0``."""

        def __init__(self, num_classes: int, scale: float = 3.0, margin: float = 0.5, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def compute(self, labels, embeddings, ref_labels, ref_embeddings):
            return tf.constant(0.0)

    spec = scratch_registry.REGISTERED["scratch_loss"]
    assert spec.defaults() == {"scale": 3.0, "margin": 0.5, "memory_size": 0}  # XBM inherited
    assert spec.family == "test_declare"  # the module's name
    assert spec.input_mode == "labelled" and spec.pair_gen_mode == "none"
    assert spec.summary == "A scratch loss for this test: scale * 0."
    assert spec.context == ("num_classes", "embedding_dim") and spec.needs_num_classes
    assert spec.params["scale"].doc == "a scale" and spec.params["margin"].doc == "margin m"
    built = spec.cls(num_classes=3, scale=2.0, embedding_dim=4)
    assert built.name == "scratch_loss" and built.scale == 2.0


def test_a_parameter_without_a_check_or_default_is_refused_at_declaration(scratch_registry):
    class NoCheck(Loss):
        """No check for ``weird``."""

        def __init__(self, weird: float = 1.0):
            super().__init__()

    with pytest.raises(TypeError, match="parameter 'weird' needs a default and a check"):
        register("no_check")(NoCheck)
    with pytest.raises(TypeError, match="checks for no parameter: nothing"):
        register("stray", weird=Check(positive, "w"), nothing=Check(positive, "n"))(NoCheck)
    with pytest.raises(TypeError, match="registered twice"):
        register("triplet")(type("Again", (Loss,), {"__doc__": "again"}))


def test_a_loss_that_does_not_forward_keywords_takes_no_memory():
    assert "memory_size" not in registry.get_spec("lifted_structure").params
    assert "memory_size" in registry.get_spec("triplet_semihard").params


def test_every_registered_default_is_its_constructors():
    for name in registry.names():
        spec = registry.get_spec(name)
        for p in declare.constructor_parameters(spec.cls):
            if p.name in spec.params:
                assert spec.params[p.name].default == p.default, (name, p.name)
        assert inspect.getmodule(spec.cls).__name__.endswith("." + spec.family), name


def test_loss_plugins_are_imported_from_their_entry_point_group(monkeypatch):
    from importlib import metadata

    group = registry.ENTRY_POINT_GROUP
    found = [metadata.EntryPoint("pairs", "tfx_metric_learning.trainer_module.losses.pair", group)]
    monkeypatch.setattr(
        metadata, "entry_points", lambda group: found if group == found[0].group else []
    )
    assert registry.load_plugins() == ["pairs"]
    found[:] = [metadata.EntryPoint("broken", "no_such_package.losses", group)]
    with pytest.raises(ImportError, match="loss plugin 'broken' \\(no_such_package.losses"):
        registry.load_plugins()
