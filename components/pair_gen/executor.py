"""PairGen executor: builds what the chosen loss consumes from Transform's examples (Beam).

Modes:

- ``none``: rows pass through unchanged (classification losses, or online mining on random
  batches);
- ``pk_batches``: class-balanced batches for online mining, written in order: each group of
  ``P x K`` consecutive rows of the train split holds ``P`` classes drawn uniformly without
  replacement (among classes with at least ``K`` rows) and ``K`` rows of each drawn uniformly
  without replacement; other splits pass through unchanged;
- ``triplets``: ``triplets_per_anchor`` (anchor, positive, negative) triplets per row;
- ``triplets_k``: ``triplets_per_anchor`` (anchor, positive, K negatives) per row;
- ``pairs``: ``triplets_per_anchor`` (left, right, similar) pairs per row, similar with
  probability ``positive_fraction``.

Whatever the mode, the ``valid`` split passes through as rows: the Trainer selects its epoch
by retrieval on them (``trainer_module/selection.py``).

Sampling is exact (``sampling``): a positive is uniform over the anchor's whole class minus
the anchor, a negative uniform over every row of the other classes, however large a class.
No worker holds a class or a split: rows are spilled in blocks of at most ``block_rows``
and every step (``steps``) holds one block's worth, so memory is bounded by ``block_rows``,
not by rows. Randomness is a counter-based stream per (seed, split, block or batch), so the
same seed gives byte-identical files on any runner, parallelism or bundle order. Rows of
single-example classes are skipped as anchors (still used as negatives) and counted.

Execution properties: ``settings`` (``PairSettings`` as JSON) and, optionally, ``training``
(``TrainingSettings`` as JSON): when given, the mode, K and P x K follow its loss
(``PairSettings.following``), which is how a runtime parameter that changes the loss on
Kubeflow gets the data it needs.

Output: an ``Examples`` artifact (gzipped TFRecords in ``Split-<name>``), a ``Schema`` of its
features that also carries the build record the Trainer reads (``pair_gen_build``: mode, K,
P x K, example counts; ``run_fn`` checks them against its loss before training), and
``pair_gen_stats.json`` beside the data with the full statistics.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
import tensorflow_transform as tft
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from tfx_metric_learning.components.pair_gen import sampling, spec, steps
from tfx_metric_learning.components.pair_gen.blocks import Payload, Store
from tfx_metric_learning.components.pair_gen.settings import PairSettings
from tfx_metric_learning.components.pair_gen.steps import PairGenError
from tfx_metric_learning.core import keys
from tfx_metric_learning.core.splits import TRAIN, VALID
from tfx_metric_learning.trainer_module import pair_gen_build
from tfx_metric_learning.trainer_module.settings import TrainingSettings

__all__ = [
    "Executor",
    "PairGenError",
    "output_schema",
    "resolve_settings",
]


def resolve_settings(exec_properties: dict[str, Any]) -> PairSettings:
    """The settings to build with: ``settings``, following ``training`` when it is given."""
    settings = PairSettings.from_json(
        exec_properties.get(spec.SETTINGS_KEY) or "", complete=True, source="PairGen's settings"
    )
    training = exec_properties.get(spec.TRAINING_KEY)
    if training:
        settings = settings.following(
            TrainingSettings.from_json(training, complete=True, source="PairGen's training")
        )
    return settings


def merge_stats(parts) -> dict[str, Any]:
    """Adds up the statistics of units (or files): per-class dicts and plain counts."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                into = merged.setdefault(key, {})
                for label, n in value.items():
                    into[label] = into.get(label, 0) + n
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def _split_stats(merged, split: str, mode: str, plan, options: dict[str, Any]) -> dict[str, Any]:
    out = {
        "split": split,
        "rows": plan.total,
        "classes": len(plan.labels),
        "blocks": len(plan.block_ids),
        "block_rows": options["block_rows"],
    }
    if mode == "pk_batches":
        return out | {
            "examples": merged.get("rows", 0),
            "batches": merged.get("batches", 0),
            "pk_classes": options["pk_classes"],
            "pk_examples": options["pk_examples"],
        }
    positives, negatives = merged.get("positives", 0), merged.get("negatives", 0)
    return out | {
        "examples": sum(merged.get("per_class", {}).values()),
        "skipped_anchors": sum(merged.get("skipped", {}).values()),
        "skipped_classes": sorted(merged.get("skipped", {})),
        "same_label_pairs": merged.get("same_label_pairs", 0),
        "positives": positives,
        "negatives": negatives,
        "positive_negative_ratio": positives / negatives if negatives else None,
        "examples_per_anchor_class": dict(sorted(merged.get("per_class", {}).items())),
    }


def _pass_through_stats(merged, split: str) -> dict[str, Any]:
    per_class = dict(sorted(merged.get("per_class", {}).items()))
    n = sum(per_class.values())
    return {
        "split": split,
        "examples": n,
        "rows": n,
        "classes": len(per_class),
        "per_class": per_class,
    }


def output_schema(mode: str, dim: int, k: int) -> schema_pb2.Schema:
    """Schema of the examples a mode writes (``dim`` features per vector)."""
    schema = schema_pb2.Schema()

    def add(name, kind, *shape):
        f = schema.feature.add(name=name, type=kind)
        for size in shape:
            f.shape.dim.add(size=size)
        f.presence.min_fraction = 1.0

    if mode not in keys.VECTOR_KEYS:
        raise PairGenError(f"mode {mode!r} has no generated schema")
    for name in keys.VECTOR_KEYS[mode]:
        add(name, schema_pb2.FLOAT, *((k, dim) if name == keys.NEGATIVES else (dim,)))
    if mode == "pairs":
        add(keys.SIMILAR, schema_pb2.INT, 1)
    for name in keys.LABEL_KEYS[mode]:
        add(name, schema_pb2.BYTES, 1)
    return schema


def split_mode(mode: str, split: str) -> str:
    """What PairGen builds for ``split``: ``mode``, or ``none`` (rows passed through).

    Rows pass through for the valid split, and for every split but train in ``pk_batches``.
    """
    rows_only = split == VALID or (mode == "pk_batches" and split != TRAIN)
    return "none" if mode == "none" or rows_only else mode


def built_record(settings: PairSettings) -> dict[str, Any]:
    """What PairGen built, as ``run_fn`` checks it against its loss (the stats file's head)."""
    return {
        "mode": settings.mode,
        "num_negatives": settings.num_negatives,
        "pk_classes": settings.pk_classes,
        "pk_examples": settings.pk_examples,
    }


def _split_files(examples, split: str) -> list[str]:
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(fileio.glob(pattern))
    if not files:
        raise PairGenError(f"split {split!r} has no files matching {pattern}")
    return files


def build_split(p, split: str, files, prefix: str, settings: PairSettings, dim: int, tmp: str):
    """The Beam steps of one split (``split_mode``): its statistics as a PCollection."""
    mode = split_mode(settings.mode, split)
    args = (p, split, files, prefix, settings.block_rows, keys.LABEL)
    if mode == "none":
        return _pass_through(*args)
    options = {
        "per_anchor": settings.triplets_per_anchor,
        "num_negatives": settings.num_negatives,
        "positive_fraction": settings.positive_fraction,
        "pk_classes": settings.pk_classes,
        "pk_examples": settings.pk_examples,
        "pk_num_batches": settings.pk_num_batches,
    }
    store = Store(os.path.join(tmp, split), Payload(None if mode == "pk_batches" else dim))
    return _sample(*args, store, mode, settings.seed, options, keys.FEATURES)


class WriteStats(beam.PTransform):
    """Every split's statistics (one PCollection), with ``built``, as one JSON file."""

    def __init__(self, built: dict[str, Any], path: str):
        super().__init__()
        self._built, self._path = built, path

    def expand(self, split_stats):  # noqa: D102
        built = self._built
        return (
            split_stats
            | "Collect" >> beam.combiners.ToList()
            | "Json"
            >> beam.Map(
                lambda s: json.dumps(
                    {**built, "splits": {x["split"]: x for x in s}}, indent=2, sort_keys=True
                )
            )
            | "Write" >> beam.io.WriteToText(self._path, shard_name_template="")
        )


def check_stats(stats: dict[str, Any], mode: str) -> None:
    """Refuses a split of fewer than 2 classes or no examples, naming it."""
    for split, s in sorted(stats["splits"].items()):
        logging.info("PairGen %s split %s: %s", mode, split, json.dumps(s))
        if s["classes"] < 2:
            raise PairGenError(
                f"split {split!r} has {s['classes']} class(es); pairs and triplets need "
                f"at least 2 (a negative must exist)"
            )
        if s["examples"] == 0:
            raise PairGenError(f"split {split!r} produced no examples ({mode})")


class Executor(base_beam_executor.BaseBeamExecutor):
    """Builds pairs/triplets/P x K batches (or passes rows through) for every split."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Runs one Beam pipeline over all splits; writes data, schema and stats."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[spec.TRANSFORMED_EXAMPLES_KEY])
        transform_graph = artifact_utils.get_single_instance(input_dict[spec.TRANSFORM_GRAPH_KEY])
        out_examples = artifact_utils.get_single_instance(output_dict[spec.EXAMPLES_KEY])
        out_schema = artifact_utils.get_single_instance(output_dict[spec.SCHEMA_KEY])
        settings = resolve_settings(exec_properties)
        logging.info("PairGen settings: %s", settings.to_json())
        transformed_schema = tft.TFTransformOutput(transform_graph.uri).transformed_metadata.schema
        dim = _feature_dim(transformed_schema, keys.FEATURES)
        split_names = artifact_utils.decode_split_names(examples.split_names)
        out_examples.split_names = artifact_utils.encode_split_names(split_names)
        stats_path = os.path.join(out_examples.uri, spec.STATS_FILE)
        tmp = self._spill_dir(out_examples.uri)
        try:
            with self._make_beam_pipeline() as p:
                split_stats = [
                    build_split(
                        p,
                        split,
                        _split_files(examples, split),
                        os.path.join(
                            artifact_utils.get_split_uri([out_examples], split), "data_tfrecord"
                        ),
                        settings,
                        dim,
                        tmp,
                    )
                    for split in split_names
                ]
                _ = (
                    split_stats
                    | "AllSplits" >> beam.Flatten()
                    | "WriteStats" >> WriteStats(built_record(settings), stats_path)
                )
        finally:
            if fileio.exists(tmp):
                fileio.rmtree(tmp)
        with fileio.open(stats_path, "r") as f:
            stats = json.loads(f.read())
        check_stats(stats, settings.mode)
        schema = schema_pb2.Schema()
        if settings.mode in ("none", "pk_batches"):  # rows pass through
            schema.CopyFrom(transformed_schema)
        else:
            schema.CopyFrom(output_schema(settings.mode, dim, settings.num_negatives))
        pair_gen_build.annotate(schema, stats)  # what the Trainer checks and counts
        io_utils.write_pbtxt_file(os.path.join(out_schema.uri, spec.SCHEMA_FILE), schema)

    def _spill_dir(self, out_uri: str) -> str:
        """The execution's temporary folder (beside the output when run without a context)."""
        try:
            return os.path.join(self._get_tmp_dir(), "pair_gen_blocks")
        except RuntimeError:
            return f"{out_uri.rstrip('/')}.pair_gen_blocks"


def _pass_through(p, split, files, prefix, block_rows, label_key):
    """Each input file streamed, unchanged, into one output file; returns the split's stats."""
    return (
        p
        | f"Files[{split}]" >> beam.Create(list(enumerate(files)))
        | f"Spread[{split}]" >> beam.Reshuffle()
        | f"Copy[{split}]"
        >> beam.ParDo(steps.PassThrough(prefix, len(files), label_key, block_rows))
        | f"Merge[{split}]" >> beam.CombineGlobally(merge_stats)
        | f"Stats[{split}]" >> beam.Map(_pass_through_stats, split)
    )


def _layout(plan: sampling.ClassPlan, mode: str, options: dict[str, Any], block_rows: int):
    """How many units a split has, and the options ``Draw`` needs.

    A unit is a block of anchors, or for ``pk_batches`` a range of batches of about
    ``block_rows`` rows.
    """
    if mode != "pk_batches":
        return {"units": len(plan.block_ids), "options": options}
    group = options["pk_classes"] * options["pk_examples"]
    batches = options["pk_num_batches"] or plan.total // group
    per_unit = max(1, block_rows // group)
    draw = options | {"batches": batches, "batches_per_unit": per_unit}
    return {"units": -(-batches // per_unit), "options": draw}


def _sample(p, split, files, prefix, block_rows, label_key, store, mode, seed, options, feats):
    """Spill -> plan -> draw -> resolve -> assemble for one split; returns its stats."""
    plan_pc = (
        p
        | f"Files[{split}]" >> beam.Create(list(enumerate(files)))
        | f"Spread[{split}]" >> beam.Reshuffle()
        | f"Spill[{split}]"
        >> beam.ParDo(
            steps.Spill(store, block_rows, label_key, None if mode == "pk_batches" else feats)
        )
        | f"Blocks[{split}]" >> beam.combiners.ToList()
        | f"Plan[{split}]" >> beam.Map(sampling.ClassPlan.from_block_counts)
    )
    plan = beam.pvalue.AsSingleton(plan_pc)
    layout_pc = plan_pc | f"Layout[{split}]" >> beam.Map(_layout, mode, options, block_rows)
    n_units = beam.pvalue.AsSingleton(
        layout_pc | f"NUnits[{split}]" >> beam.Map(lambda x: x["units"])
    )
    draw_options = beam.pvalue.AsSingleton(
        layout_pc | f"DrawOptions[{split}]" >> beam.Map(lambda x: x["options"])
    )
    units_pc = layout_pc | f"UnitIds[{split}]" >> beam.FlatMap(lambda x: range(x["units"]))
    drawn = (
        units_pc
        | f"SpreadUnits[{split}]" >> beam.Reshuffle()
        | f"Draw[{split}]" >> beam.ParDo(steps.Draw(store, mode, split, seed), plan, draw_options)
    )
    resolved = beam.pvalue.AsList(
        plan_pc
        | f"BlockIds[{split}]" >> beam.FlatMap(lambda pl: range(len(pl.block_ids)))
        | f"SpreadBlocks[{split}]" >> beam.Reshuffle()
        | f"Resolve[{split}]"
        >> beam.ParDo(steps.Resolve(store), plan, n_units, beam.pvalue.AsList(drawn))
    )
    if mode == "pk_batches":  # one writer, batches in order
        writes = p | f"One[{split}]" >> beam.Create([None])
        assemble = steps.AssembleInOrder(store, prefix)
    else:  # one file per unit, written in parallel
        writes = units_pc | f"SpreadWrites[{split}]" >> beam.Reshuffle()
        assemble = steps.Assemble(store, mode, prefix)
    _ = writes | f"Write[{split}]" >> beam.ParDo(assemble, plan, n_units, resolved)
    return (
        drawn
        | f"Merge[{split}]" >> beam.CombineGlobally(merge_stats)
        | f"Stats[{split}]"
        >> beam.Map(_split_stats, split, mode, plan, options | {"block_rows": block_rows})
    )


def _feature_dim(schema: schema_pb2.Schema, features_key: str) -> int:
    for feature in schema.feature:
        if feature.name == features_key:
            return int(feature.shape.dim[0].size)
    raise PairGenError(f"transformed schema has no {features_key!r} feature")
