"""PairGen: a custom TFX component between Transform and Trainer (see ``executor``)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.pair_gen import executor


class PairGenSpec(ComponentSpec):
    """Inputs: Transform's examples and graph. Outputs: examples and their schema."""

    PARAMETERS = {
        "mode": ExecutionParameter(type=str),
        "triplets_per_anchor": ExecutionParameter(type=int, optional=True),
        "num_negatives": ExecutionParameter(type=int, optional=True),
        "positive_fraction": ExecutionParameter(type=float, optional=True),
        "pk_classes": ExecutionParameter(type=int, optional=True),
        "pk_examples": ExecutionParameter(type=int, optional=True),
        "pk_num_batches": ExecutionParameter(type=int, optional=True),
        "block_rows": ExecutionParameter(type=int, optional=True),
        "seed": ExecutionParameter(type=int, optional=True),
        "features_key": ExecutionParameter(type=str, optional=True),
        "label_key": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "transformed_examples": ChannelParameter(type=standard_artifacts.Examples),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
    }


class PairGen(base_beam_component.BaseBeamComponent):
    """Builds offline triplets, or passes labelled rows through, for the chosen loss."""

    SPEC_CLASS = PairGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        transformed_examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        mode: str,
        triplets_per_anchor: int = 1,
        seed: int = 42,
        num_negatives: int = 1,
        positive_fraction: float = 0.5,
        pk_classes: int = 8,
        pk_examples: int = 4,
        pk_num_batches: int = 0,
        block_rows: int = executor.DEFAULT_BLOCK_ROWS,
        features_key: str = "features",
        label_key: str = "label",
    ):
        """Mode: ``none`` (pass through), ``pairs``, ``triplets``, ``triplets_k``, ``pk_batches``.

        ``triplets_per_anchor`` examples are drawn per row; ``num_negatives`` is K for
        ``triplets_k``; ``positive_fraction`` the share of similar pairs for ``pairs``;
        ``pk_classes`` x ``pk_examples`` rows form each ``pk_batches`` group, and
        ``pk_num_batches`` groups are drawn (0: as many as the train split has rows for).
        Rows are processed in blocks of at most ``block_rows``: the memory knob (see
        ``executor``); it does not change what is drawn, only which stream draws it.
        """
        if min(pk_classes, pk_examples) < 1 or pk_num_batches < 0:
            raise ValueError("pk_classes and pk_examples must be >= 1, pk_num_batches >= 0")
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if not 0.0 < positive_fraction < 1.0:
            raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
        if mode not in executor.MODES:
            raise ValueError(f"unknown PairGen mode {mode!r}; valid: {', '.join(executor.MODES)}")
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        if triplets_per_anchor < 1:
            raise ValueError(f"triplets_per_anchor must be >= 1, got {triplets_per_anchor}")
        spec = PairGenSpec(
            transformed_examples=transformed_examples,
            transform_graph=transform_graph,
            mode=mode,
            triplets_per_anchor=triplets_per_anchor,
            num_negatives=num_negatives,
            positive_fraction=float(positive_fraction),
            pk_classes=pk_classes,
            pk_examples=pk_examples,
            pk_num_batches=pk_num_batches,
            block_rows=block_rows,
            seed=seed,
            features_key=features_key,
            label_key=label_key,
            examples=types.Channel(type=standard_artifacts.Examples),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        super().__init__(spec=spec)
