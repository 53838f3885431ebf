"""Embeddings of an eval split, written as shards by the Beam workers and read back in tiles.

**Writing** (``embed_splits``, Beam): each worker reads whole example files in batches of
``BATCH_ROWS`` (``ReadBatches``), embeds them and writes one record per batch, ``labels``,
``keys`` and ``embeddings`` in an ``.npz``, into TFRecord shards
``<source>-<split>-SSSSS-of-NNNNN.tfrecord``. No step gathers a split on one worker.

**Reading** (``EmbeddingShards``): the shards are read in file-name order, record by record,
through TensorFlow's file system (local, ``gs://``, ``ram://``): the labels and keys of every
row (``index``), the rows at given positions (``take``), or the embeddings in tiles of at
most ``TILE_BYTES`` (``tiles``), which the search visits one at a time. Memory: one tile plus the
labels and keys, never the whole split; a split whose shards fit in a tile is read once,
whole (``read``).

**Query sample** (``sample_rows``): a row's key is a 64-bit BLAKE2b hash of its serialized
example, keyed by the seed; the sample is the ``n`` rows of smallest key. The sample is thus a
uniform, seeded draw that does not depend on the order in which a runner wrote the rows (only
the rows' positions, which break exact similarity ties, do), and every model scored on the same
eval split, in this run or a later one, is scored on the same queries. (A split written again
may hold other bytes for the same examples: protobuf does not fix the order of map entries.)
"""

from __future__ import annotations

import hashlib
import io
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.dsl.io import fileio

from tfx_metric_learning.core import keys
from tfx_metric_learning.core import records as tfrecords

EMBED_SIGNATURE = "serve_examples"
TRANSFORM_SIGNATURE = "transform_features"
RAW_SIGNATURE = "serving_default"
# the raw-feature baselines, scored beside every model (see the executor's docstring)
RAW_READ, RAW_TRANSFORMED = "raw_features", "transformed_features"
RAW_BASELINES = (RAW_READ, RAW_TRANSFORMED)
SHARD_SUFFIX = ".tfrecord"
TILE_BYTES = 1 << 28  # gallery embeddings searched at a time: 256 MB (1M rows at 64 dims)
BATCH_ROWS = 1024  # examples embedded per model call, and rows per shard record


def row_keys(serialized: list[bytes], seed: int) -> np.ndarray:
    """Seeded 64-bit keys of serialized examples (see the module doc)."""
    salt = str(seed).encode()
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(s, digest_size=8, key=salt).digest(), "little")
            for s in serialized
        ],
        dtype=np.uint64,
    )


def encode_record(labels: np.ndarray, keys: np.ndarray, embeddings: np.ndarray) -> bytes:
    """One shard record: a batch's labels, keys and float32 embeddings as ``.npz`` bytes."""
    buf = io.BytesIO()
    np.savez(
        buf,
        labels=np.asarray(labels, dtype=str),
        keys=np.asarray(keys, np.uint64),
        embeddings=np.asarray(embeddings, np.float32),
    )
    return buf.getvalue()


def decode_record(record: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, keys, embeddings)`` of one record written by ``encode_record``."""
    with np.load(io.BytesIO(record)) as data:
        return data["labels"], data["keys"], data["embeddings"]


class _Embed(beam.DoFn):
    """Batches of serialized raw examples -> shard records, one model loaded per worker.

    ``source``: ``EMBED_SIGNATURE`` (the model's embedding), ``RAW_TRANSFORMED`` (its
    Transform output ``features``) or ``RAW_READ`` (the features its ``serving_default``
    signature takes, sorted by name: the first value of a scalar feature, the first ``d``
    of a feature of shape ``[None, d]``; float or integer; a missing, non-numeric or
    non-finite value counts as 0). Examples are parsed by ``tf.io.parse_example``, a batch
    at a time.

    With ``transform_graph``, ``model_dir`` is Transform's graph, not a model, and the two
    raw sources are what a model exported with that graph (``trainer_module/export.py``)
    computes: ``RAW_TRANSFORMED`` the graph applied to the examples parsed with the raw
    feature spec (missing floats as NaN), ``RAW_READ`` the raw features but the label,
    sorted by name, one value each (``serving_default`` takes one ``[N]`` tensor per
    feature), parsed with their own dtype (a string one counts as 0).
    """

    def __init__(
        self, model_dir: str, label_column: str, source: str, seed: int, transform_graph=False
    ):
        self._model_dir = model_dir
        self._label = label_column
        self._source = source
        self._seed = seed
        self._transform_graph = transform_graph
        self._fn = None
        self._raw_spec: dict[str, tf.io.RaggedFeature] = {}
        self._widths: dict[str, int] = {}

    def setup(self):
        if self._transform_graph:
            self._setup_from_transform_graph()
            return
        signatures = tf.saved_model.load(self._model_dir).signatures
        wanted = {
            EMBED_SIGNATURE: EMBED_SIGNATURE,
            RAW_TRANSFORMED: TRANSFORM_SIGNATURE,
            RAW_READ: RAW_SIGNATURE,
        }[self._source]
        if wanted not in signatures:
            raise ValueError(
                f"the model in {self._model_dir} has no {wanted!r} signature (it has "
                f"{sorted(signatures)}); models exported by this project's Trainer have it"
            )
        self._fn = signatures[wanted]
        if self._source == RAW_READ:
            inputs = self._fn.structured_input_signature[1]
            self._raw_spec = {
                name: tf.io.RaggedFeature(inputs[name].dtype)
                for name in sorted(inputs)
                if inputs[name].dtype in (tf.float32, tf.float64, tf.int64)
            }
            self._widths = {name: _width(inputs[name]) for name in sorted(inputs)}
            self._fn = _raw_reader(self._raw_spec, self._widths)

    def _setup_from_transform_graph(self):
        import tensorflow_transform as tft

        from tfx_metric_learning.trainer_module.export import missing_as_nan

        graph = tft.TFTransformOutput(self._model_dir)
        raw_spec = missing_as_nan(graph.raw_feature_spec())
        if self._source == RAW_TRANSFORMED:
            layer = graph.transform_features_layer()

            @tf.function(
                input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                autograph=False,
            )
            def transform_features(examples):
                return layer(tf.io.parse_example(examples, raw_spec))

            self._fn, self._layer = transform_features, layer  # the layer owns the graph
            return
        if self._source != RAW_READ:
            raise ValueError(f"a transform graph gives the raw baselines only, not {self._source}")
        names = sorted(name for name in raw_spec if name != self._label)
        self._raw_spec = {
            name: tf.io.RaggedFeature(raw_spec[name].dtype)
            for name in names
            if raw_spec[name].dtype in (tf.float32, tf.float64, tf.int64)
        }
        self._widths = dict.fromkeys(names, 1)
        self._fn = _raw_reader(self._raw_spec, self._widths)

    def _vectors(self, serialized: tf.Tensor, n: int) -> np.ndarray:
        if self._source == EMBED_SIGNATURE:
            return self._fn(examples=serialized)["embedding"].numpy().reshape(n, -1)
        if self._source == RAW_TRANSFORMED:
            return self._fn(examples=serialized)[keys.FEATURES].numpy().reshape(n, -1)
        values = self._fn(serialized).numpy().reshape(n, -1)
        return np.where(np.isfinite(values), values, 0.0)

    def process(self, batch: list[bytes]):
        serialized = tf.constant(batch)
        try:
            labels = tf.io.parse_example(
                serialized, {self._label: tf.io.FixedLenFeature([], tf.string)}
            )[self._label].numpy()
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(
                f"every eval example needs one string label in {self._label!r}: "
                f"{e.message.splitlines()[0]}"
            ) from e
        vectors = self._vectors(serialized, len(batch))
        yield encode_record(
            np.char.decode(labels.astype(bytes), "utf-8"), row_keys(batch, self._seed), vectors
        )


def _raw_reader(raw_spec: dict[str, tf.io.RaggedFeature], widths: dict[str, int]):
    """A ``tf.function``: serialized examples -> ``[N, sum(widths)]`` float32 raw features.

    Each of ``widths``' features (in that order) parsed by ``raw_spec`` as a ragged row, cut
    or padded with 0 to its width (0 for a feature not in ``raw_spec``), as float64, the
    columns concatenated, then float32 (numpy's promotion of the mixed columns). One graph
    per batch: the same ops run eagerly, one feature at a time, took 81 us a row at 64
    features, this 10 us.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def read(serialized):
        parsed = tf.io.parse_example(serialized, raw_spec) if raw_spec else {}
        n = tf.shape(serialized)[0]
        columns = [
            tf.cast(parsed[name][:, :width].to_tensor(default_value=0, shape=[None, width]),
                    tf.float64)
            if name in parsed
            else tf.zeros([n, width], tf.float64)
            for name, width in widths.items()
        ]  # fmt: skip
        return tf.cast(tf.concat(columns, axis=1), tf.float32)

    return read


def _width(spec: tf.TensorSpec) -> int:
    """Values a raw feature contributes: ``d`` for shape ``[None, d]``, else 1."""
    shape = spec.shape
    return int(shape[1]) if shape.rank == 2 and shape[1] is not None else 1


class ReadBatches(beam.PTransform):
    """The serialized records of the files matching ``pattern``, in lists of at most ``size``.

    Each file is read whole, in order, by one worker with TensorFlow's C++ record reader
    (``records.iter_batches``; gzip by the ``.gz`` name, as Beam decides). Beam's
    ``ReadFromTFRecord`` frames and checks every record in Python: on the 1M-row benchmark's
    eval split (300,000 rows, 8 files) that was about 3 s of the 7 s it took to embed it. Files
    are the unit of parallelism (ExampleGen writes several per split). No file matching is
    ``ValueError``.
    """

    def __init__(self, pattern: str, size: int):
        super().__init__()
        self._pattern = pattern
        self._size = size

    def expand(self, pbegin):
        files = sorted(fileio.glob(self._pattern))
        if not files:
            raise ValueError(f"no example files match {self._pattern}")
        size = self._size
        return (
            pbegin
            | "Files" >> beam.Create(files)
            | "Spread" >> beam.Reshuffle()
            | "Records" >> beam.FlatMap(lambda path: tfrecords.iter_batches(path, size))
        )


class SmallestKeys(beam.CombineFn):
    """The ``rows`` serialized examples of smallest ``row_keys``, from batches of them.

    Beam's ``Top.Smallest`` keys and compares one element at a time in Python (a BLAKE2b and
    a heap step per row); here each batch's keys are computed at once and cut to the
    ``rows`` smallest with numpy. The accumulator holds at most ``rows`` rows. Equal keys
    are equal examples (up to a 64-bit collision), so which copy is kept does not matter.
    """

    def __init__(self, rows: int, seed: int):
        self._rows = rows
        self._seed = seed

    def create_accumulator(self):
        return np.zeros(0, np.uint64), []

    def _cut(self, keys: np.ndarray, rows: list[bytes]):
        if len(keys) <= self._rows:
            return keys, rows
        keep = np.argpartition(keys, self._rows - 1)[: self._rows]
        return keys[keep], [rows[i] for i in keep]

    def add_input(self, accumulator, batch: list[bytes]):
        keys, rows = accumulator
        return self._cut(np.concatenate([keys, row_keys(batch, self._seed)]), rows + list(batch))

    def merge_accumulators(self, accumulators):
        keys, rows = self.create_accumulator()
        for more_keys, more_rows in accumulators:
            keys, rows = self._cut(np.concatenate([keys, more_keys]), rows + more_rows)
        return keys, rows

    def extract_output(self, accumulator) -> list[bytes]:
        keys, rows = accumulator
        return [rows[i] for i in np.argsort(keys, kind="stable")]


def shard_prefix(out_dir: str, source: str, split: str) -> str:
    """Where the shards of ``source`` on ``split`` go (before ``-SSSSS-of-NNNNN``)."""
    return os.path.join(out_dir, f"{source}-{split}")


def embed_splits(
    pipeline: beam.Pipeline,
    patterns: dict[str, str],
    models: dict[str, str],
    label_column: str,
    out_dir: str,
    batch_size: int = BATCH_ROWS,
    raw_baselines_of: str = "",
    seed: int = 0,
    transformed_patterns: dict[str, str] | None = None,
    transformed_rows: int = 0,
    transform_graph: str = "",
) -> None:
    """Adds Beam steps writing each split's embeddings by each model as shards.

    With ``raw_baselines_of`` (a model name), the raw-feature baselines of that model's
    inputs are written the same way, as sources ``raw_features`` and ``transformed_features``
    (with ``transform_graph``, a Transform graph's folder, those of that graph instead);
    the splits of ``transformed_patterns`` get only ``transformed_features`` (what the
    classic baselines are fit on), of their ``transformed_rows`` rows of smallest key when
    that is > 0 (the sample ``sample_rows`` would take, chosen before embedding by
    ``SmallestKeys``, which holds that many rows per worker, not the split).
    """
    sources = {name: (model_dir, EMBED_SIGNATURE) for name, model_dir in models.items()}
    if raw_baselines_of:
        sources |= {raw: (models[raw_baselines_of], raw) for raw in RAW_BASELINES}
    elif transform_graph:
        sources |= {raw: (transform_graph, raw) for raw in RAW_BASELINES}
    only = {RAW_TRANSFORMED: sources.get(RAW_TRANSFORMED)}
    jobs = [(split, pattern, sources, 0) for split, pattern in patterns.items()]
    jobs += [(s, p, only, transformed_rows) for s, p in (transformed_patterns or {}).items()]
    for split, pattern, wanted, rows in jobs:
        batches = pipeline | f"Read[{split}]" >> ReadBatches(pattern, batch_size)
        if rows > 0:
            batches = (
                batches
                | f"Sample[{split}]" >> beam.CombineGlobally(SmallestKeys(rows, seed))
                | f"Batch[{split}]"
                >> beam.FlatMap(
                    lambda sample: (
                        sample[s : s + batch_size] for s in range(0, len(sample), batch_size)
                    )
                )
            )
        for name, (model_dir, source) in wanted.items():
            tag = f"{name}-{split}"
            _ = (
                batches
                | f"Embed[{tag}]"
                >> beam.ParDo(
                    _Embed(
                        model_dir,
                        label_column,
                        source,
                        seed,
                        transform_graph=bool(transform_graph) and model_dir == transform_graph,
                    )
                )
                | f"Write[{tag}]"
                >> beam.io.WriteToTFRecord(
                    shard_prefix(out_dir, name, split), file_name_suffix=SHARD_SUFFIX
                )
            )


class EmbeddingShards:
    """The embeddings one source wrote for one split (see the module doc)."""

    def __init__(self, out_dir: str, source: str, split: str):
        pattern = f"{shard_prefix(out_dir, source, split)}-?????-of-?????{SHARD_SUFFIX}"
        self.files = sorted(fileio.glob(pattern))
        if not self.files:
            raise FileNotFoundError(f"no embedding shards match {pattern}")

    def records(self):
        """``(labels, keys, embeddings)`` of every record, in order."""
        for path in self.files:
            for record in tfrecords.iter_records(path):
                yield decode_record(record)

    def read(self, max_bytes: int | None = None):
        """``(labels, keys, embeddings)`` of every row, in one pass; None above ``max_bytes``.

        None when the shard files hold more than ``max_bytes`` (their size on storage;
        default ``TILE_BYTES``): the caller then reads them in tiles.
        """
        limit = TILE_BYTES if max_bytes is None else max_bytes
        if sum(fileio.stat(path).length for path in self.files) > limit:
            return None
        labels, keys, emb = [], [], []
        for batch_labels, batch_keys, batch_emb in self.records():
            labels.append(batch_labels)
            keys.append(batch_keys)
            emb.append(batch_emb)
        if not labels:
            return np.zeros(0, str), np.zeros(0, np.uint64), np.zeros((0, 0), np.float32)
        return np.concatenate(labels), np.concatenate(keys), np.concatenate(emb)

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, keys)`` of every row, in order."""
        labels, keys = [], []
        for batch_labels, batch_keys, _ in self.records():
            labels.append(batch_labels)
            keys.append(batch_keys)
        if not labels:
            return np.zeros(0, str), np.zeros(0, np.uint64)
        return np.concatenate(labels), np.concatenate(keys)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The embeddings at the sorted row positions ``rows``."""
        rows = np.asarray(rows, np.int64)
        out, offset = [], 0
        for _, _, emb in self.records():
            lo, hi = np.searchsorted(rows, [offset, offset + len(emb)])
            if hi > lo:
                out.append(emb[rows[lo:hi] - offset])
            offset += len(emb)
        if sum(len(part) for part in out) != len(rows):
            raise ValueError(f"rows up to {rows.max()} asked of {offset} in {self.files[0]}")
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def tiles(self, rows: int = 0):
        """A ``search.Tiles``: calling it yields the embeddings ``rows`` rows at a time.

        ``rows`` 0: as many rows as fill ``TILE_BYTES`` of float32: a split that fits is
        searched as one tile, with no merge of per-tile results.
        """

        def generate():
            parts, held = [], 0
            for _, _, emb in self.records():
                parts.append(emb)
                held += len(emb)
                if held >= (rows or TILE_BYTES // (4 * max(emb.shape[1], 1))):
                    yield np.concatenate(parts)
                    parts, held = [], 0
            if parts:
                yield np.concatenate(parts)

        return generate


def write_mapped(out_dir: str, source: str, split: str, target: str, fn) -> None:
    """Writes ``target``'s shards of ``split`` from ``source``'s.

    Every record with its embeddings replaced by ``fn(embeddings)`` (labels and keys kept),
    into one shard, written then renamed.
    """
    shards = EmbeddingShards(out_dir, source, split)
    final = f"{shard_prefix(out_dir, target, split)}-00000-of-00001{SHARD_SUFFIX}"
    tmp = final + ".tmp"
    with tf.io.TFRecordWriter(tmp) as out:
        for labels, keys, emb in shards.records():
            out.write(encode_record(labels, keys, fn(emb)))
    fileio.rename(tmp, final, overwrite=True)


def read_sample(out_dir: str, source: str, split: str, max_rows: int):
    """``(embeddings, labels)`` of the ``max_rows`` rows of ``split`` of smallest key."""
    shards = EmbeddingShards(out_dir, source, split)
    labels, keys = shards.index()
    rows = sample_rows(keys, max_rows)
    return shards.take(rows), labels[rows]


def sample_rows(keys: np.ndarray, max_rows: int) -> np.ndarray:
    """Sorted positions of the ``max_rows`` rows of smallest key (all rows when 0 or fewer)."""
    if not max_rows or len(keys) <= max_rows:
        return np.arange(len(keys))
    order = np.lexsort((np.arange(len(keys)), keys))  # key, then position: no tie is left open
    return np.sort(order[:max_rows])
