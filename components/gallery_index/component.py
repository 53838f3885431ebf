"""GalleryIndex: a custom TFX component that indexes a model's gallery for lookups."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tfx_metric_learning.components.gallery_index import executor, spec
from tfx_metric_learning.components.gallery_index.settings import GallerySettings


class GalleryIndexSpec(ComponentSpec):
    """Raw examples and a model -> the gallery index with its match threshold."""

    PARAMETERS = {
        spec.LABEL_COLUMN_KEY: ExecutionParameter(type=str),
        spec.SETTINGS_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        spec.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        spec.EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
    }
    OUTPUTS = {spec.GALLERY_INDEX_KEY: ChannelParameter(type=spec.GalleryIndex)}


class GalleryIndex(base_beam_component.BaseBeamComponent):
    """Embeds the labelled rows of ``examples`` with ``model``; indexes and calibrates them."""

    SPEC_CLASS = GalleryIndexSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        label_column: str,
        settings: GallerySettings,
        model_blessing: types.BaseChannel | None = None,
        evaluation: types.BaseChannel | None = None,
    ):
        """Indexes ``model``'s gallery; with ``model_blessing``, only a blessed model's.

        ``evaluation``: the model's evaluation, whose eval-split work is read when it fits.
        """
        settings.validate()
        super().__init__(
            spec=GalleryIndexSpec(
                examples=examples,
                model=model,
                model_blessing=model_blessing,
                evaluation=evaluation,
                label_column=label_column,
                settings=settings.to_json(),
                gallery_index=types.Channel(type=spec.GalleryIndex),
            )
        )
