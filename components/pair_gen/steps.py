"""The Beam steps of PairGen, each bounded by one block of rows (see ``executor``).

1. ``Spill``: an input file -> blocks of at most ``block_rows`` rows (payload + labels) and
   each block's class counts.
2. ``ClassPlan`` (``sampling``) from all blocks' counts: class sizes and where they live.
3. ``Draw``: a unit (an anchor block, or a range of P x K batches) -> its tuples of
   class-order indices (anchor, positive, negatives), and requests grouped by block.
4. ``Resolve``: a block -> the rows every unit asked of it.
5. ``Assemble``: a unit -> its examples, gathered from the answers, written to its file.
"""

from __future__ import annotations

import io
import os
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx_bsl.coders import example_coder

from tfx_metric_learning.components.pair_gen import example_bytes, sampling
from tfx_metric_learning.components.pair_gen.blocks import Store
from tfx_metric_learning.core import keys
from tfx_metric_learning.core import records as tfrecords


class PairGenError(ValueError):
    """The examples cannot give what the mode needs; the message names the split or file."""


def decode(
    records: list[bytes],
    path: str,
    first_row: int,
    label_key: str,
    features_key: str | None = None,
    dim: int | None = None,
):
    """Labels (and ``features_key`` vectors as a float32 matrix) of serialized examples.

    Raises ``PairGenError`` naming the file and row when a label or vector is missing or a
    vector's length is not ``dim`` (default: the first row's length).
    """
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)

    def column(name):
        if name not in batch.schema.names:
            raise PairGenError(f"{path}: examples have no {name!r} feature ({batch.schema.names})")
        return batch.column(batch.schema.get_field_index(name))

    def check(col, name, want):
        lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(lengths != want)
        if len(bad):
            row = first_row + int(bad[0])
            raise PairGenError(
                f"{path}: row {row} has {int(lengths[bad[0]])} {name!r} value(s), expected "
                f"{want} ({len(bad)} such row(s) in this block)"
            )

    labels = column(label_key)
    check(labels, label_key, 1)
    text = [b.decode("utf-8") for b in labels.flatten().to_pylist()]
    if features_key is None:
        return text, None
    feats = column(features_key)
    if dim is None:
        dim = int(feats.value_lengths()[0].as_py() or 0)
    check(feats, features_key, dim)
    matrix = feats.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return text, matrix.reshape(len(records), dim)


def _count(labels: list[str]) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return {str(v): int(n) for v, n in zip(values, counts, strict=True)}


class Spill(beam.DoFn):
    """``(file index, path)`` -> blocks in the store; yields ``(block id, rows, counts)``."""

    def __init__(self, store: Store, block_rows: int, label_key: str, features_key: str | None):
        self._store = store
        self._block_rows = block_rows
        self._label_key = label_key
        self._features_key = features_key  # None: rows are passed through, not decoded

    def process(self, element):
        file_index, path = element
        first = 0
        for b, records in enumerate(tfrecords.iter_batches(path, self._block_rows)):
            labels, feats = decode(
                records, path, first, self._label_key, self._features_key, self._store.payload.dim
            )
            block = f"{file_index:06d}-{b:06d}"
            self._store.write_block(block, records if feats is None else feats, labels)
            first += len(records)
            yield block, len(records), _count(labels)


def _unit_key(seed: int, split: str, mode: str, unit: Any) -> int:
    return sampling.stable_hash(seed, split, mode, unit)


def _save(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as f:
        return {k: f[k] for k in f.files}


class Draw(beam.DoFn):
    """A unit -> its tuples of class-order indices and its requests; yields its statistics.

    Tuples: ``triplets`` (anchor, positive, negative); ``triplets_k`` (anchor, positive, K
    negatives); ``pairs`` (left, right) with ``similar`` drawn with ``positive_fraction``;
    ``pk_batches`` one row per slot. Anchors of classes with one row (no positive) or of the
    only class (no negative) are skipped and counted.
    """

    def __init__(self, store: Store, mode: str, split: str, seed: int):
        self._store = store
        self._mode = mode
        self._split = split
        self._seed = seed

    def process(self, unit: int, plan: sampling.ClassPlan, options: dict[str, Any]):
        if self._mode == "pk_batches":
            tuples, flags, stats = self._pk(unit, plan, options)
        else:
            tuples, flags, stats = self._anchors(unit, plan, options)
        self._store_unit(unit, tuples, flags, plan)
        yield stats

    def _anchors(self, unit: int, plan: sampling.ClassPlan, options: dict[str, Any]):
        block = plan.block_ids[unit]
        classes = plan.class_ids(self._store.labels(block))
        own = plan.global_index(unit, classes)
        size = plan.sizes[classes]
        usable = (size >= 2) & (size < plan.total)
        skipped = np.bincount(classes[~usable], minlength=len(plan.labels))
        anchors = np.repeat(own[usable], options["per_anchor"])
        k = options["num_negatives"]
        draws = {"triplets": 2, "triplets_k": 1 + k, "pairs": 3}[self._mode]
        u = sampling.uniforms(
            _unit_key(self._seed, self._split, self._mode, block), len(anchors) * draws
        ).reshape(len(anchors), draws)
        positive = plan.draw_positive(u[:, 0], anchors)
        flags = np.zeros(len(anchors), np.int64)
        if self._mode == "pairs":
            flags = (u[:, 2] < options["positive_fraction"]).astype(np.int64)
            negative = plan.draw_negative(u[:, 1], anchors)
            tuples = np.stack([anchors, np.where(flags == 1, positive, negative)], axis=1)
            positives, negatives = int(flags.sum()), int(len(flags) - flags.sum())
        else:
            negatives = [plan.draw_negative(u[:, 1 + i], anchors) for i in range(draws - 1)]
            tuples = np.stack([anchors, positive, *negatives], axis=1)
            positives, negatives = len(anchors), len(anchors) * (draws - 1)
        anchor_classes = plan.class_of(anchors)
        other = plan.class_of(tuples[:, -1]) if len(tuples) else anchor_classes
        per_class = np.bincount(anchor_classes, minlength=len(plan.labels))
        stats = {
            "per_class": _named(plan, per_class),
            "skipped": _named(plan, skipped),
            "same_label_pairs": int((other == anchor_classes).sum()),
            "positives": positives,
            "negatives": negatives,
        }
        return tuples, flags, stats

    def _pk(self, unit: int, plan: sampling.ClassPlan, options: dict[str, Any]):
        p, k, per_unit, batches = (
            options[name] for name in ("pk_classes", "pk_examples", "batches_per_unit", "batches")
        )
        eligible = np.flatnonzero(plan.sizes >= k)
        if len(eligible) < p:
            raise PairGenError(
                f"split {self._split!r}: pk_batches needs {p} classes with at least {k} rows "
                f"each; only {len(eligible)} have that many"
            )
        rows = []
        numbers = range(unit * per_unit, min(batches, (unit + 1) * per_unit))
        for batch in numbers:
            key = _unit_key(self._seed, self._split, self._mode, batch)
            for c in eligible[sampling.distinct(key, len(eligible), p)]:
                picks = sampling.distinct(sampling.stable_hash(key, c), int(plan.sizes[c]), k)
                rows.extend(int(plan.offsets[c]) + j for j in picks)
        tuples = np.asarray(rows, np.int64).reshape(-1, 1)
        return tuples, np.zeros(len(rows), np.int64), {"rows": len(rows), "batches": len(numbers)}

    def _store_unit(self, unit: int, tuples: np.ndarray, flags: np.ndarray, plan) -> None:
        self._store.write_unit(unit, _save({"tuples": tuples, "flags": flags}))
        flat = tuples.ravel()
        blocks, order = plan.by_block(flat)
        starts = np.searchsorted(blocks[order], np.arange(len(plan.block_ids) + 1))
        self._store.write_requests(unit, flat[order], starts)


def _named(plan: sampling.ClassPlan, counts: np.ndarray) -> dict[str, int]:
    return {plan.labels[c]: int(counts[c]) for c in np.flatnonzero(counts)}


class Resolve(beam.DoFn):
    """A block -> the rows each unit asked of it, saved as that block's answers."""

    def __init__(self, store: Store):
        self._store = store

    def process(self, block: int, plan: sampling.ClassPlan, units: int, _drawn):
        block_id = plan.block_ids[block]
        rows_of = sampling.BlockRows(plan.class_ids(self._store.labels(block_id)))
        items = self._store.block_items(block_id)
        sections = []
        for unit in range(units):
            wanted = self._store.requests_for(unit, block)
            _, cls, occurrence = plan.locate(wanted)
            sections.append(self._store.payload.take(items, rows_of.rows(cls, occurrence)))
        self._store.write_answers(block, sections)
        yield block


def gather(store: Store, unit: int, units: int, tuples: np.ndarray, plan):
    """The payload items of a unit's tuples, in tuple order (``[n, slots, dim]`` or a list)."""
    flat = tuples.ravel()
    blocks, order = plan.by_block(flat)
    parts = [store.answers_for(int(b), unit, units) for b in np.unique(blocks)]
    if store.payload.is_vector:
        out = np.empty((len(flat), store.payload.dim), np.float32)
        if len(flat):
            out[order] = np.concatenate(parts)
        return out.reshape(*tuples.shape, store.payload.dim)
    got = [item for part in parts for item in part]
    out = [b""] * len(flat)
    for position, item in zip(order.tolist(), got, strict=True):
        out[position] = item
    return out


def encode(mode: str, tuples: np.ndarray, flags: np.ndarray, vectors: np.ndarray, plan):
    """Serialized examples of a unit's tuples (features as in ``output_schema``)."""
    if not len(tuples):
        return []
    labels = np.asarray([s.encode() for s in plan.labels], dtype=object)
    vector_keys = keys.VECTOR_KEYS[mode]
    columns = {
        key: ("float", vectors[:, 2:] if key == keys.NEGATIVES else vectors[:, i])
        for i, key in enumerate(vector_keys)
    }
    if mode == "pairs":
        columns[keys.SIMILAR] = ("int64", flags.tolist())
    label_keys = keys.LABEL_KEYS[mode]
    first_and_last = (tuples[:, 0], tuples[:, -1])[: len(label_keys)]
    for key, members in zip(label_keys, first_and_last, strict=True):
        columns[key] = ("bytes", labels[plan.class_of(members)])
    return example_bytes.serialize(columns, len(tuples))


def write_records(path: str, records) -> None:
    """Gzipped TFRecord file, written under a temporary name then renamed."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    temp = f"{path}.incomplete"
    with tf.io.TFRecordWriter(temp, tf.io.TFRecordOptions(compression_type="GZIP")) as out:
        for record in records:
            out.write(record)
    tf.io.gfile.rename(temp, path, overwrite=True)


def copy_file(source: str, path: str) -> None:
    """A byte copy of ``source`` at ``path``, written under a temporary name then renamed."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    temp = f"{path}.incomplete"
    tf.io.gfile.copy(source, temp, overwrite=True)
    tf.io.gfile.rename(temp, path, overwrite=True)


def output_path(prefix: str, index: int, count: int) -> str:
    """``<prefix>-00003-of-00008.gz``."""
    return f"{prefix}-{index:05d}-of-{count:05d}.gz"


class Assemble(beam.DoFn):
    """A unit -> its examples, written to output file ``unit`` of ``units``."""

    def __init__(self, store: Store, mode: str, prefix: str):
        self._store = store
        self._mode = mode
        self._prefix = prefix

    def process(self, unit: int, plan: sampling.ClassPlan, units: int, _resolved):
        saved = _load(self._store.read_unit(unit))
        tuples, flags = saved["tuples"], saved["flags"]
        vectors = gather(self._store, unit, units, tuples, plan)
        records = encode(self._mode, tuples, flags, vectors, plan)
        write_records(output_path(self._prefix, unit, units), records)
        yield unit


class AssembleInOrder(beam.DoFn):
    """All units' rows, unit after unit, into one file (P x K batches must stay in order)."""

    def __init__(self, store: Store, prefix: str):
        self._store = store
        self._prefix = prefix

    def process(self, _, plan: sampling.ClassPlan, units: int, _resolved):
        def rows():
            for unit in range(units):
                tuples = _load(self._store.read_unit(unit))["tuples"]
                yield from gather(self._store, unit, units, tuples, plan)

        write_records(output_path(self._prefix, 0, 1), rows())
        yield 0


class PassThrough(beam.DoFn):
    """``(file index, path)`` -> the same records in output file ``index``; yields counts.

    Every record is read and its label decoded (the counts, and a bad record named). A
    gzipped input (what Transform writes) is then copied byte for byte, since the output is
    gzipped too: compressing the same records again took most of the pass-through's time
    (15 s for the 1M-row benchmark's 1,000,000 rows on 2 workers); any other is written
    record by record.
    """

    def __init__(self, prefix: str, count: int, label_key: str, block_rows: int):
        self._prefix = prefix
        self._count = count
        self._label_key = label_key
        self._block_rows = block_rows

    def process(self, element):
        index, path = element
        counts: dict[str, int] = {}

        def records():
            first = 0
            for batch in tfrecords.iter_batches(path, self._block_rows):
                labels, _ = decode(batch, path, first, self._label_key)
                for label, n in _count(labels).items():
                    counts[label] = counts.get(label, 0) + n
                first += len(batch)
                yield from batch

        out = output_path(self._prefix, index, self._count)
        if tfrecords.is_gzip(path):
            for _ in records():
                pass
            copy_file(path, out)
        else:
            write_records(out, records())
        yield {"per_class": counts}
