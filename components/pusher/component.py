"""Pusher: TFX's Pusher with an optional gallery index pushed in the same version.

TFX's ``PusherSpec`` has no channel for anything but the model and its blessings; this spec
is TFX's plus ``gallery_index`` (``components/gallery_index``), and the executor
(``executor.py``) pushes the index into the version folder with the model, all-or-nothing.
The node id stays ``Pusher``.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from tfx_metric_learning.components.gallery_index import spec as gallery_spec
from tfx_metric_learning.components.pusher import executor


class PusherSpec(ComponentSpec):
    """TFX's PusherSpec with an optional ``gallery_index`` input."""

    PARAMETERS = standard_component_specs.PusherSpec.PARAMETERS
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        gallery_spec.GALLERY_INDEX_KEY: ChannelParameter(
            type=gallery_spec.GalleryIndex, optional=True
        ),
    }
    OUTPUTS = standard_component_specs.PusherSpec.OUTPUTS


class Pusher(base_component.BaseComponent):
    """Pushes a blessed model (and its gallery index) to a filesystem, all-or-nothing."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        gallery_index: types.BaseChannel | None = None,
    ):
        super().__init__(
            spec=PusherSpec(
                model=model,
                model_blessing=model_blessing,
                push_destination=push_destination,
                gallery_index=gallery_index,
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
