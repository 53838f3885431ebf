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

Keyed random sampling, with bounded state per class: each class keeps its size and a pool
of ``pool_size`` rows (those with the smallest seeded hash keys, a uniform sample). A
positive is uniform over the anchor's class pool, never the anchor itself; a negative's class
is drawn in proportion to class sizes, then a row uniformly from its pool. With classes no
larger than the pool (default 256) this is exactly uniform over the class and over all rows
of the other classes; for larger classes each draw is still uniform over the class when
averaged over seeds, but one run draws from its pool only. No worker holds a whole class.
Rows of single-example classes are skipped as anchors (still used as negatives) and counted.

Output: an ``Examples`` artifact (gzipped TFRecords in ``Split-<name>``), a ``Schema`` of its
features, and ``pair_gen_stats.json`` beside the data. Files are byte-identical for a seed
whatever the runner: each input file is streamed, in its own order, into one output file
(no shuffle, flat memory); ``pk_batches`` writes its groups, in batch order, to one file
(``writer``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.pair_gen import sampling, writer

STATS_FILE = "pair_gen_stats.json"
SCHEMA_FILE = "schema.pbtxt"
MODES = ("none", "pairs", "triplets", "triplets_k", "pk_batches")
TRIPLET_KEYS = ("anchor", "positive", "negative")


class PairGenError(ValueError):
    """The examples cannot give what the mode needs; the message names the split."""


def _parse(serialized: bytes, features_key: str, label_key: str) -> tuple[str, list[float]]:
    example = tf.train.Example.FromString(serialized)
    feats = example.features.feature
    if label_key not in feats or features_key not in feats:
        raise PairGenError(f"example lacks {label_key!r} or {features_key!r}: {sorted(feats)}")
    label = feats[label_key].bytes_list.value[0].decode("utf-8")
    return label, list(feats[features_key].float_list.value)


def _floats(v) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(v).tolist()))


def _text(v: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))


def _serialize(feature: dict[str, tf.train.Feature]) -> bytes:
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def _class_table(_, pools: dict[str, list[tuple]], sizes: dict[str, int]) -> dict[str, Any]:
    """``{"classes": label -> (pool keys, pool features, pool rows), "sizes", "index"}``.

    A class's pool is its ``pool_size`` rows with the smallest stable keys: a uniform random
    sample without replacement, fixed by the seed (the whole class when it is smaller).
    """
    table = {}
    for label, members in pools.items():
        members = sorted(members, key=lambda m: m[0])
        rows = [m[2] for m in members]
        # numpy arrays and one bytes blob: compact, and cheap for Beam to size as side input
        table[label] = (
            np.asarray([m[0] for m in members], np.int64),
            np.frombuffer(b"".join(m[1] for m in members), np.float32).reshape(len(members), -1),
            (b"".join(rows), np.cumsum([0] + [len(r) for r in rows])),
        )
    return {"classes": table, "sizes": dict(sizes), "index": sampling.ClassIndex(dict(sizes))}


class _MakeTuples(beam.DoFn):
    """One anchor row -> its pairs / triplets / K-negative tuples, drawn deterministically."""

    def __init__(self, mode: str, seed: int, per_anchor: int, k: int, positive_fraction: float):
        self._mode = mode
        self._seed = seed
        self._per_anchor = per_anchor
        self._k = k
        self._positive_fraction = positive_fraction
        self._skipped = beam.metrics.Metrics.counter("pair_gen", "skipped_anchors")

    def process(self, element, table):
        label, key, feats, _ = element
        classes = table["classes"]
        keys, matrix, _ = classes[label]
        size = table["sizes"][label]
        if size < 2 or table["index"].total == size:  # no positive, or no negative
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput("skipped", label)
            return
        try:
            own = sampling.index_of(keys, key)
        except KeyError:
            own = None  # not in its class's pool: every pool member is another row
        rng = sampling.rng_for(self._seed, key)

        def negative():
            neg_label = table["index"].draw_negative_class(rng, label)
            pool = classes[neg_label][1]
            return neg_label, pool[int(rng.integers(len(pool)))]

        def positive_index():
            if own is None:
                return int(rng.integers(len(keys)))
            return sampling.draw_positive(rng, len(keys), own)

        for i in range(self._per_anchor):
            sort_key = (key, i)
            positive = matrix[positive_index()]
            if self._mode == "triplets":
                neg_label, neg = negative()
                feature = {
                    "anchor": _floats(feats),
                    "positive": _floats(positive),
                    "negative": _floats(neg),
                    "anchor_label": _text(label),
                    "negative_label": _text(neg_label),
                }
                yield label, neg_label, _serialize(feature), sort_key
            elif self._mode == "triplets_k":
                negs = [negative() for _ in range(self._k)]
                feature = {
                    "anchor": _floats(feats),
                    "positive": _floats(positive),
                    "negatives": _floats(np.stack([n[1] for n in negs])),
                    "anchor_label": _text(label),
                }
                yield label, negs[0][0], _serialize(feature), sort_key
            else:
                similar = rng.random() < self._positive_fraction
                other_label, other = (label, positive) if similar else negative()
                feature = {
                    "left": _floats(feats),
                    "right": _floats(other),
                    "similar": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(similar)])
                    ),
                    "left_label": _text(label),
                    "right_label": _text(other_label),
                }
                yield label, other_label, _serialize(feature), sort_key


class _ProcessFile(beam.DoFn):
    """One input file -> one output file, streamed in input order (flat memory, no shuffle).

    The output of input file ``i`` of ``n`` is ``<prefix>-0000i-of-0000n.gz``: the same input
    files and seed give byte-identical output files on any runner and parallelism.
    """

    def __init__(self, mode: str, prefix: str, count: int, make: _MakeTuples, keys: tuple):
        self._mode = mode
        self._prefix = prefix
        self._count = count
        self._make = make
        self._seed, self._features_key, self._label_key = keys

    def process(self, element, table):
        index, path = element
        stats = {"per_class": {}, "skipped": {}, "same_label_pairs": 0}
        out = writer.shard_path(self._prefix, index, self._count)
        tf.io.gfile.makedirs(os.path.dirname(out))
        temp = f"{out}.incomplete"
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        compression = "GZIP" if path.endswith(".gz") else ""
        with tf.io.TFRecordWriter(temp, options) as out_file:
            for record in tf.compat.v1.io.tf_record_iterator(
                path, tf.io.TFRecordOptions(compression_type=compression)
            ):
                label, key, feats = _parse_keyed(
                    record, self._seed, self._features_key, self._label_key
                )
                if self._mode == "none":
                    out_file.write(record)
                    stats["per_class"][label] = stats["per_class"].get(label, 0) + 1
                    continue
                for item in self._make.process((label, key, feats, record), table):
                    if isinstance(item, beam.pvalue.TaggedOutput):
                        stats["skipped"][label] = stats["skipped"].get(label, 0) + 1
                        continue
                    anchor_label, other_label, serialized, _ = item
                    out_file.write(serialized)
                    stats["per_class"][anchor_label] = stats["per_class"].get(anchor_label, 0) + 1
                    stats["same_label_pairs"] += int(anchor_label == other_label)
        tf.io.gfile.rename(temp, out, overwrite=True)
        yield stats


def merge_file_stats(parts) -> dict[str, Any]:
    """Adds up the per-file statistics of ``_ProcessFile``."""
    merged = {"per_class": {}, "skipped": {}, "same_label_pairs": 0}
    for part in parts:
        merged["same_label_pairs"] += part["same_label_pairs"]
        for key in ("per_class", "skipped"):
            for label, n in part[key].items():
                merged[key][label] = merged[key].get(label, 0) + n
    return merged


def _file_stats(merged, split: str, mode: str, table) -> dict[str, Any]:
    out = {
        "split": split,
        "examples": sum(merged["per_class"].values()),
        "rows": sum(table["sizes"].values()),
        "classes": len(table["sizes"]),
    }
    if mode == "none":
        out["per_class"] = dict(sorted(merged["per_class"].items()))
        return out
    out.update(
        {
            "skipped_anchors": sum(merged["skipped"].values()),
            "skipped_classes": sorted(merged["skipped"]),
            "same_label_pairs": merged["same_label_pairs"],
            "examples_per_anchor_class": dict(sorted(merged["per_class"].items())),
        }
    )
    return out


def make_pk_batch(batch: int, table: dict[str, Any], seed: int, p: int, k: int):
    """The rows of P x K batch number ``batch``: ``((batch, position), serialized)``."""
    classes = table["classes"]
    eligible = sorted(c for c, v in classes.items() if len(v[0]) >= k)
    if len(eligible) < p:
        raise PairGenError(
            f"pk_batches needs {p} classes with at least {k} rows each; "
            f"only {len(eligible)} have that many"
        )
    rng = sampling.rng_for(seed, batch)
    position = 0
    for c in rng.choice(len(eligible), size=p, replace=False):
        blob, offsets = classes[eligible[c]][2]
        for r in rng.choice(len(offsets) - 1, size=k, replace=False):
            yield (batch, position), blob[offsets[r] : offsets[r + 1]]
            position += 1


def output_schema(mode: str, dim: int, k: int) -> schema_pb2.Schema:
    """Schema of the examples a mode writes (``dim`` features per vector)."""
    schema = schema_pb2.Schema()

    def add(name, kind, *shape):
        f = schema.feature.add(name=name, type=kind)
        for size in shape:
            f.shape.dim.add(size=size)
        f.presence.min_fraction = 1.0

    if mode == "triplets":
        for name in TRIPLET_KEYS:
            add(name, schema_pb2.FLOAT, dim)
        add("anchor_label", schema_pb2.BYTES, 1)
        add("negative_label", schema_pb2.BYTES, 1)
    elif mode == "triplets_k":
        add("anchor", schema_pb2.FLOAT, dim)
        add("positive", schema_pb2.FLOAT, dim)
        add("negatives", schema_pb2.FLOAT, k, dim)
        add("anchor_label", schema_pb2.BYTES, 1)
    elif mode == "pairs":
        add("left", schema_pb2.FLOAT, dim)
        add("right", schema_pb2.FLOAT, dim)
        add("similar", schema_pb2.INT, 1)
        add("left_label", schema_pb2.BYTES, 1)
        add("right_label", schema_pb2.BYTES, 1)
    else:
        raise PairGenError(f"mode {mode!r} has no generated schema")
    return schema


class Executor(base_beam_executor.BaseBeamExecutor):
    """Builds pairs/triplets (or passes rows through) for every split."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Runs one Beam pipeline over all splits; writes data, schema and stats."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict["transformed_examples"])
        transform_graph = artifact_utils.get_single_instance(input_dict["transform_graph"])
        out_examples = artifact_utils.get_single_instance(output_dict["examples"])
        out_schema = artifact_utils.get_single_instance(output_dict["schema"])
        mode = exec_properties["mode"]
        if mode not in MODES:
            raise PairGenError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        seed = int(exec_properties.get("seed", 42))
        per_anchor = int(exec_properties.get("triplets_per_anchor", 1))
        pk_p = int(exec_properties.get("pk_classes") or 8)
        pk_k = int(exec_properties.get("pk_examples") or 4)
        pk_batches = int(exec_properties.get("pk_num_batches") or 0)
        pool_size = int(exec_properties.get("pool_size") or 256)
        if pool_size < 2 or (mode == "pk_batches" and pool_size < pk_k):
            raise PairGenError(f"pool_size {pool_size} must be >= 2 and >= pk_examples {pk_k}")
        k = int(exec_properties.get("num_negatives") or 1)
        positive_fraction = float(exec_properties.get("positive_fraction") or 0.5)
        features_key = exec_properties.get("features_key", "features")
        label_key = exec_properties.get("label_key", "label")

        transformed_schema = tft.TFTransformOutput(transform_graph.uri).transformed_metadata.schema
        dim = _feature_dim(transformed_schema, features_key)
        split_names = artifact_utils.decode_split_names(examples.split_names)
        out_examples.split_names = artifact_utils.encode_split_names(split_names)
        stats_path = os.path.join(out_examples.uri, STATS_FILE)

        split_stats = []
        with self._make_beam_pipeline() as p:
            for split in split_names:
                pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
                out_prefix = os.path.join(
                    artifact_utils.get_split_uri([out_examples], split), "data_tfrecord"
                )
                rows = p | f"Read[{split}]" >> beam.io.ReadFromTFRecord(pattern)
                keyed = rows | f"Key[{split}]" >> beam.Map(
                    lambda r: (*_parse_keyed(r, seed, features_key, label_key), r)
                )
                # bounded per-class state only: sizes, and a pool of pool_size rows per class
                sizes = (
                    keyed
                    | f"One[{split}]" >> beam.Map(lambda r: (r[0], 1))
                    | f"Sizes[{split}]" >> beam.CombinePerKey(sum)
                )
                pools = (
                    keyed
                    | f"Member[{split}]"
                    >> beam.Map(
                        # features as bytes: 3 objects per row, cheap for Beam to size
                        lambda r: (r[0], (r[1], np.asarray(r[2], np.float32).tobytes(), r[3]))
                    )
                    | f"Pool[{split}]"
                    >> beam.combiners.Top.SmallestPerKey(pool_size, key=lambda m: m[0])
                )
                table = (
                    p
                    | f"Once[{split}]" >> beam.Create([None])
                    | f"Index[{split}]"
                    >> beam.Map(_class_table, beam.pvalue.AsDict(pools), beam.pvalue.AsDict(sizes))
                )
                if mode == "pk_batches" and split == "train":
                    n_batches = beam.pvalue.AsSingleton(
                        table
                        | f"NumBatches[{split}]"
                        >> beam.Map(
                            lambda t: pk_batches or sum(t["sizes"].values()) // (pk_p * pk_k)
                        )
                    )
                    ordered = (
                        p
                        | f"Seed[{split}]" >> beam.Create([None])
                        | f"Batches[{split}]" >> beam.FlatMap(lambda _, n: range(n), n_batches)
                        | f"MakePK[{split}]"
                        >> beam.FlatMap(
                            make_pk_batch, beam.pvalue.AsSingleton(table), seed, pk_p, pk_k
                        )
                    )
                    _ = ordered | f"Write[{split}]" >> writer.WriteSortedShards(
                        out_prefix, 1, lambda key: 0
                    )
                    stats = (
                        ordered
                        | f"PKCount[{split}]" >> beam.combiners.Count.Globally()
                        | f"PKStats[{split}]"
                        >> beam.Map(_pk_stats, split, beam.pvalue.AsSingleton(table), pk_p, pk_k)
                    )
                    split_stats.append(stats)
                    continue
                files = sorted(fileio.glob(pattern))
                if not files:
                    raise PairGenError(f"split {split!r} has no files matching {pattern}")
                make = _MakeTuples(
                    "pairs" if mode == "none" else mode, seed, per_anchor, k, positive_fraction
                )
                per_file = (
                    p
                    | f"Files[{split}]" >> beam.Create(list(enumerate(files)))
                    | f"Spread[{split}]" >> beam.Reshuffle()
                    | f"Process[{split}]"
                    >> beam.ParDo(
                        _ProcessFile(
                            "none" if mode == "pk_batches" else mode,
                            out_prefix,
                            len(files),
                            make,
                            (seed, features_key, label_key),
                        ),
                        beam.pvalue.AsSingleton(table),
                    )
                )
                stats = (
                    per_file
                    | f"Merge[{split}]" >> beam.CombineGlobally(merge_file_stats)
                    | f"Stats[{split}]"
                    >> beam.Map(
                        _file_stats,
                        split,
                        "none" if mode == "pk_batches" else mode,
                        beam.pvalue.AsSingleton(table),
                    )
                )
                split_stats.append(stats)
            _ = (
                split_stats
                | "AllSplits" >> beam.Flatten()
                | "Collect" >> beam.combiners.ToList()
                | "Json"
                >> beam.Map(
                    lambda s: json.dumps(
                        {"mode": mode, "splits": {x["split"]: x for x in s}},
                        indent=2,
                        sort_keys=True,
                    )
                )
                | "WriteStats" >> beam.io.WriteToText(stats_path, shard_name_template="")
            )

        passes_rows = mode in ("none", "pk_batches")
        schema = transformed_schema if passes_rows else output_schema(mode, dim, k)
        io_utils.write_pbtxt_file(os.path.join(out_schema.uri, SCHEMA_FILE), schema)
        with fileio.open(stats_path, "r") as f:
            stats = json.loads(f.read())
        for split, s in sorted(stats["splits"].items()):
            logging.info("PairGen %s split %s: %s", mode, split, json.dumps(s))
            if s["classes"] < 2:
                raise PairGenError(
                    f"split {split!r} has {s['classes']} class(es); pairs and triplets need "
                    f"at least 2 (a negative must exist)"
                )
            if s["examples"] == 0:
                raise PairGenError(f"split {split!r} produced no examples ({mode})")


def _pk_stats(count: int, split: str, table, p: int, k: int) -> dict[str, Any]:
    return {
        "split": split,
        "examples": int(count),
        "rows": sum(table["sizes"].values()),
        "classes": len(table["classes"]),
        "batches": int(count) // (p * k),
        "pk_classes": p,
        "pk_examples": k,
    }


def _parse_keyed(serialized: bytes, seed: int, features_key: str, label_key: str):
    label, feats = _parse(serialized, features_key, label_key)
    return label, sampling.stable_key(seed, serialized), feats


def _feature_dim(schema: schema_pb2.Schema, features_key: str) -> int:
    for feature in schema.feature:
        if feature.name == features_key:
            return int(feature.shape.dim[0].size)
    raise PairGenError(f"transformed schema has no {features_key!r} feature")
