"""ExampleGen's Beam stages, as named PTransforms the executor composes (``executor.ingest``).

- ``ReadBatches``: the input files -> ``(file, up to BATCH_ROWS raw rows)``; a CSV file in byte
  ranges (``ranges``), a TFRecord file whole.
- ``ValidateBatches``: those -> ``Chunk``s: every row validated (``batch``, ``rows``), the
  kept rows encoded as tf.Examples and staged in a file of their own, their split hashes and
  the batch's ``report.RowCounts``.
- ``SplitByProtocol``: chunks -> per split, parts ``(labels, serialized examples)``:
  ``seen_classes`` by per-class hash cutoffs (``cutoffs``: the ``split_plan.eval_count``
  lowest hashes of a class go to eval, the next ones to valid), ``unseen_classes`` by class
  roles (``class_roles``); also outputs ``ROLES`` (the classes' roles, or None).
- ``CountClasses``: parts -> ``{label: rows}`` of a split.

A row's split hash is sha256(seed, its serialized tf.Example)'s first 8 bytes (``row_hash``):
the same rows and seed give the same split on any runner and in any order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf

from tfx_metric_learning.components.example_gen import batch, files, ranges, rows, split_plan
from tfx_metric_learning.components.example_gen.layout import InputLayout
from tfx_metric_learning.components.example_gen.report import CountsFn, RowCounts
from tfx_metric_learning.components.example_gen.split_plan import EVAL, TRAIN, VALID
from tfx_metric_learning.core import records

# rows validated and encoded together (numpy per batch; a batch of 64 features is ~1 MB)
BATCH_ROWS = 2048
# the extra output of SplitByProtocol: the class roles (unseen_classes), a singleton
ROLES = "roles"


@dataclasses.dataclass
class Chunk:
    """A batch of one file's rows after validation.

    ``staged`` is the file of the kept rows' serialized tf.Examples (None when no row is
    kept); ``labels`` and ``hashes`` are theirs, in that file's order.
    """

    file: str
    labels: list[str]
    staged: str | None
    hashes: np.ndarray
    counts: RowCounts

    def examples(self) -> list[bytes]:
        """The kept rows' serialized tf.Examples, read back from the staged file."""
        return list(records.iter_records(self.staged)) if self.staged else []


def row_hash(seed: int, serialized: bytes) -> int:
    """The split hash of a row: sha256(seed, NUL, its serialized tf.Example)'s first 8 bytes."""
    digest = hashlib.sha256(str(seed).encode() + b"\0" + serialized).digest()
    return int.from_bytes(digest[:8], "big")


def _read_tfrecord_batches(path: str):
    """(path, at most ``BATCH_ROWS`` records of it), for every record of the file."""
    chunk: list[bytes] = []
    for record in files.iter_tfrecords(path):
        chunk.append(record)
        if len(chunk) == BATCH_ROWS:
            yield path, chunk
            chunk = []
    if chunk:
        yield path, chunk


def _read_csv_batches(byte_range: ranges.ByteRange):
    """(path, at most ``BATCH_ROWS`` lines of it), for every line of the range."""
    for lines in ranges.read_batches(byte_range, BATCH_ROWS):
        yield byte_range.path, lines


class ReadBatches(beam.PTransform):
    """The root of the read: ``paths`` -> ``(file, raw rows)``, ``BATCH_ROWS`` at most."""

    def __init__(self, paths: list[str], layout: InputLayout):
        super().__init__()
        self._paths = paths
        self._layout = layout

    def expand(self, root):
        if self._layout.tfrecord:
            return (
                root
                | "TFRecordFiles" >> beam.Create(self._paths)
                | "ReadTFRecords" >> beam.FlatMap(_read_tfrecord_batches)
            )
        header_lines = {p: self._layout.header_of(p).lines for p in self._paths}
        return (
            root
            | "ByteRanges" >> beam.Create(ranges.plan(self._paths, header_lines))
            | "ReadCSV" >> beam.FlatMap(_read_csv_batches)
        )


def _example_values(example, renamed: dict[str, str]) -> dict[str, Any]:
    """``{feature name: value}`` of a tf.Example (features of other names are left out)."""
    values: dict[str, Any] = {}
    for raw_name, feature in example.features.feature.items():
        name = renamed.get(raw_name)
        if name is None:
            continue
        kind = feature.WhichOneof("kind")
        items = list(getattr(feature, kind).value) if kind else []
        if len(items) > 1:
            values[name] = f"<{len(items)} values>"  # not a scalar: reported as non-numeric
        elif not items:
            values[name] = None
        elif kind == "bytes_list":
            values[name] = items[0].decode("utf-8", errors="replace")
        else:
            values[name] = items[0]
    return values


def check_batch(layout: InputLayout, encoding: str, filename: str, raws: list):
    """A batch of raw rows validated: ``(batch.Checked, rows read)``.

    Blank CSV lines are not rows. A CSV row is the bytes of one line, decoded with
    ``encoding`` (bytes it cannot decode stop the run naming the file) and validated by
    ``batch.validate_csv``; a TFRecord row is a record, validated by ``rows.validate_row``.
    """
    if not layout.tfrecord:
        lines = [files.decode_line(raw, encoding, filename).rstrip("\r\n") for raw in raws]
        names, label_index = layout.file_names(filename)
        delimiter = layout.header_of(filename).delimiter
        checked, blank = batch.validate_csv(lines, delimiter, names, label_index)
        if names != layout.names:
            checked = batch.with_features(
                checked,
                [n for j, n in enumerate(names) if j != label_index],
                layout.feature_names,
            )
        return checked, len(raws) - len(blank)
    kept, labels, values, bad = [], [], [], []
    for i, raw in enumerate(raws):
        example = _example_values(files.parse_example(raw, filename), layout.renamed)
        features, label, info = rows.validate_row(example, layout.feature_names, layout.label_name)
        if features is None:
            bad.append((i, info))
        else:
            kept.append(i)
            labels.append(label)
            values.append([features[name] for name in layout.feature_names])
    matrix = np.array(values, dtype=np.float32).reshape(len(kept), len(layout.feature_names))
    return batch.Checked(kept, labels, matrix, bad), len(raws)


class _ValidateBatch(beam.DoFn):
    """(file, a batch of its raw rows) -> a ``Chunk`` (``check_batch``, then encoded)."""

    def __init__(self, layout: InputLayout, encoding: str, seed: int, staging: str):
        self._layout = layout
        self._staging = staging
        self._encoding = encoding
        self._seed = seed
        self._encoder = None

    def setup(self):
        self._encoder = batch.ExampleEncoder(self._layout.feature_names, self._layout.label_name)

    def process(self, element: tuple[str, list]):
        filename, raws = element
        checked, read = check_batch(self._layout, self._encoding, filename, raws)
        missing = np.isnan(checked.values).sum(axis=0)
        counts = RowCounts.of_batch(
            filename,
            read,
            checked.labels,
            {self._layout.feature_names[j]: int(missing[j]) for j in np.flatnonzero(missing)},
            checked.bad,
        )
        examples = self._encoder.encode(checked.values, checked.labels)
        hashes = np.array([row_hash(self._seed, e) for e in examples], dtype=np.uint64)
        staged = None
        if examples:
            staged = os.path.join(self._staging, f"{uuid.uuid4().hex}.tfrecord")
            with tf.io.TFRecordWriter(staged) as out:
                for example in examples:
                    out.write(example)
        yield Chunk(filename, checked.labels, staged, hashes, counts)


class ValidateBatches(beam.PTransform):
    """``(file, raw rows)`` -> ``Chunk``s, the encoded rows staged in files under ``staging``."""

    def __init__(self, layout: InputLayout, encoding: str, seed: int, staging: str):
        super().__init__()
        self._fn = _ValidateBatch(layout, encoding, seed, staging)

    def expand(self, batches):
        return batches | "Validate" >> beam.ParDo(self._fn)


class CountRows(beam.PTransform):
    """Chunks -> their ``RowCounts`` merged (a singleton)."""

    def expand(self, chunks):
        return (
            chunks
            | "Counts" >> beam.Map(lambda c: c.counts)
            | "Merge" >> beam.CombineGlobally(CountsFn())
        )


def _hashes_by_label(chunk: Chunk):
    """(label, the chunk's hashes of that label): what the cutoffs are computed from."""
    if not chunk.labels:
        return
    names, inverse = np.unique(np.array(chunk.labels, dtype=str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
    for k, name in enumerate(names.tolist()):
        yield name, chunk.hashes[order[bounds[k] : bounds[k + 1]]]


def cutoffs(
    element: tuple[str, list[np.ndarray]], eval_fraction: float, validation_fraction: float
) -> tuple[str, tuple[int, int]]:
    """Per class: the hashes below which a row goes to eval, and then to valid.

    The ``eval_count(n, eval_fraction)`` lowest hashes go to eval, the next
    ``eval_count(n_train, validation_fraction)`` to valid (none when that fraction is 0), as
    ``split_plan`` plans them.
    """
    label, parts = element
    hashes = np.sort(np.concatenate(list(parts)))
    k_eval = split_plan.eval_count(len(hashes), eval_fraction)
    k_valid = (
        split_plan.eval_count(len(hashes) - k_eval, validation_fraction)
        if validation_fraction > 0
        else 0
    )
    return label, (int(hashes[k_eval]), int(hashes[k_eval + k_valid]))


def class_roles(
    counts: RowCounts, eval_classes: list[str], validation_fraction: float
) -> dict[str, list[str]]:
    """``unseen_classes``: the held-out eval classes and the validation classes."""
    held = set(eval_classes)
    train = [c for c in counts.classes if c not in held]
    valid = split_plan.default_validation_classes(train, validation_fraction)
    return {EVAL: sorted(held), VALID: valid}


class _SplitChunk(beam.DoFn):
    """A chunk -> one (labels, examples) part per split it has rows of, tagged by split.

    ``seen_classes``: a row goes to eval when its hash is below its class's eval cutoff, else
    to valid when below the valid cutoff, else to train; ``unseen_classes``: by its class's
    role.
    """

    def process(self, chunk: Chunk, cut=None, roles=None):
        labels = chunk.labels
        if cut is not None:
            eval_cut = np.array([cut[c][0] for c in labels], dtype=np.uint64)
            valid_cut = np.array([cut[c][1] for c in labels], dtype=np.uint64)
            where = np.where(chunk.hashes < eval_cut, 1, np.where(chunk.hashes < valid_cut, 2, 0))
        else:
            held, valid = set(roles[EVAL]), set(roles[VALID])
            where = np.array([1 if c in held else 2 if c in valid else 0 for c in labels])
        examples = chunk.examples()
        for index, name in enumerate((TRAIN, EVAL, VALID)):
            rows_in = np.flatnonzero(where == index)
            if rows_in.size:
                part = ([labels[i] for i in rows_in], [examples[i] for i in rows_in])
                yield beam.pvalue.TaggedOutput(name, part)


class SplitByProtocol(beam.PTransform):
    """Chunks -> ``{TRAIN, EVAL, VALID: parts, ROLES: roles or None}`` by the protocol.

    ``counts`` (the merged ``RowCounts``) gives ``unseen_classes`` its classes; the eval
    classes are ``eval_classes`` when given, else ``split_plan.default_eval_classes``.
    """

    def __init__(
        self,
        counts,
        protocol: str,
        eval_fraction: float,
        validation_fraction: float,
        eval_classes: list[str] | None,
    ):
        super().__init__()
        self._counts = counts
        self._protocol = protocol
        self._eval_fraction = eval_fraction
        self._validation_fraction = validation_fraction
        self._eval_classes = eval_classes

    def expand(self, chunks):
        roles = None
        if self._protocol == "unseen_classes":
            if self._eval_classes:
                chosen = chunks.pipeline | "EvalClasses" >> beam.Create(
                    [sorted(map(str, self._eval_classes))]
                )
            else:
                chosen = self._counts | "DefaultEvalClasses" >> beam.Map(
                    lambda c: split_plan.default_eval_classes(list(c.classes))
                )
            roles = self._counts | "ClassRoles" >> beam.Map(
                class_roles, beam.pvalue.AsSingleton(chosen), self._validation_fraction
            )
            side = {"roles": beam.pvalue.AsSingleton(roles)}
        else:
            cut = (
                chunks
                | "LabelHashes" >> beam.FlatMap(_hashes_by_label)
                | "GroupHashes" >> beam.GroupByKey()
                | "Cutoff" >> beam.Map(cutoffs, self._eval_fraction, self._validation_fraction)
            )
            side = {"cut": beam.pvalue.AsDict(cut)}
        parts = chunks | "Split" >> beam.ParDo(_SplitChunk(), **side).with_outputs(
            TRAIN, EVAL, VALID
        )
        return {TRAIN: parts[TRAIN], EVAL: parts[EVAL], VALID: parts[VALID], ROLES: roles}


def _class_counts(part: tuple[list[str], list[bytes]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in part[0]:
        counts[label] = counts.get(label, 0) + 1
    return counts


def _sum_counts(all_counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in all_counts:
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total


class CountClasses(beam.PTransform):
    """Parts ``(labels, examples)`` of one split -> ``{label: rows}`` (a singleton)."""

    def expand(self, parts):
        return (
            parts
            | "Classes" >> beam.Map(_class_counts)
            | "Sum" >> beam.CombineGlobally(_sum_counts)
        )
