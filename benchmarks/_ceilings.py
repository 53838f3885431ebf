"""Ceilings for the pipeline's components, for the benchmarks to compare against.

Each ceiling is the library a component is built on, called bare on the data a pipeline run
used.

Each function reads the artifacts of a finished run under ``root`` (the pipeline root),
runs in the caller's process and returns its timings in seconds; run it in a fresh process
(as ``pipeline_scale.py`` does) so that one measurement does not warm the next. The Beam
ceilings take ``workers``: in-process ("1", the default) or that many worker processes, as
the run they are compared with.

- ``example_gen``: a Beam pipeline reading the CSV, decoding it with tfx-bsl's CSV decoder
  (what TFX's ``CsvExampleGen`` uses), encoding tf.Examples with tfx-bsl and writing GZIP
  TFRecords: no validation, split or report;
- ``statistics``: TFDV's ``GenerateStatistics`` on ExampleGen's splits (what TFX's
  StatisticsGen runs), statistics written per split;
- ``transform``: TFT's ``AnalyzeAndTransformDataset`` with the pipeline's own
  ``preprocessing_fn`` on ExampleGen's splits through TFXIO, analysed on train, every split
  transformed and written as GZIP tf.Example TFRecords, and the transform graph written
  (what TFX's Transform does inside, like for like);
- ``fit``: the Trainer's split (PairGen's output) parsed into numpy arrays, then plain
  ``fit`` of the same encoder and loss for one epoch, one device, no input pipeline;
- ``embed``: the candidate SavedModel's ``serve_examples`` signature over ExampleGen's eval
  split, read and embedded in one pass in this process (the evaluator's first unavoidable
  part);
- ``knn``: faiss's exhaustive k-NN (inner product of the unit vectors, as the evaluator
  ranks by cosine) of the queries the evaluator scored (every eval row, or its seeded
  sample) against the candidate's eval embeddings, k = the largest class (MAP@R needs R
  neighbours); the embeddings read from the evaluator's shards;
- ``machine``: no ceiling but fixed work, timed to tell how fast the machine is that day.
"""

from __future__ import annotations

import functools
import glob
import os
import tempfile
import time


def beam_args(workers: str) -> list[str]:
    """Beam's FnApiRunner in-process (``workers`` "1") or on that many worker processes."""
    if int(workers) == 1:
        return ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
    return [
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={workers}",
    ]


def artifact(root: str, component: str, output: str) -> str:
    """The newest artifact folder of ``component``'s ``output`` under the pipeline root."""
    found = glob.glob(os.path.join(root, "artifacts", component, output, "*"))
    if not found:
        raise FileNotFoundError(f"no {component} {output} under {root}")
    return max(found, key=lambda p: int(os.path.basename(p)))


def splits_of(examples_dir: str) -> list[str]:
    """The split names of an Examples artifact folder."""
    return sorted(
        os.path.basename(p)[len("Split-") :]
        for p in glob.glob(os.path.join(examples_dir, "Split-*"))
    )


def example_gen(csv: str, out: str, workers: str = "1") -> float:
    """Bare tfx-bsl CSV -> tf.Example -> GZIP TFRecords; seconds."""
    import apache_beam as beam
    from tfx_bsl.coders import csv_decoder, example_coder

    with open(csv) as f:
        columns = f.readline().strip().split(",")
    started = time.perf_counter()
    with beam.Pipeline(argv=beam_args(workers)) as p:
        _ = (
            p
            | beam.io.ReadFromText(csv, skip_header_lines=1)
            | csv_decoder.CSVToRecordBatch(column_names=columns, desired_batch_size=None)
            | beam.FlatMap(example_coder.RecordBatchToExamples)
            | beam.io.WriteToTFRecord(os.path.join(out, "data_tfrecord"), file_name_suffix=".gz")
        )
    return time.perf_counter() - started


def statistics(root: str, out: str, workers: str = "1") -> float:
    """Bare TFDV statistics of every ExampleGen split; seconds."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    examples = artifact(root, "FileBasedExampleGen", "examples")
    started = time.perf_counter()
    with beam.Pipeline(argv=beam_args(workers)) as p:
        for split in splits_of(examples):
            source = tfxio.TFExampleRecord(
                file_pattern=os.path.join(examples, f"Split-{split}", "*")
            )
            _ = (
                p
                | f"Read[{split}]" >> source.BeamSource()
                | f"Stats[{split}]" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
                | f"Write[{split}]"
                >> tfdv.WriteStatisticsToBinaryFile(os.path.join(out, split, "FeatureStats.pb"))
            )
    return time.perf_counter() - started


def transform(root: str, out: str, workers: str = "1", reads: str = "tfx") -> float:
    """Bare TFT with the pipeline's preprocessing_fn, writing what TFX's Transform writes.

    Analyses train, transforms the splits the pipeline's Transform wrote, encodes the
    transformed rows as tf.Examples with tfx-bsl's ``RecordBatchToExamplesEncoder`` and writes
    them as GZIP TFRecords per split (as TFX's ``TransformProcessor._EncodeAndWrite``), and
    writes the transform graph. No statistics (the pipeline's Transform runs with
    ``disable_statistics``), no analyzer cache, no artifact bookkeeping. Seconds.

    ``reads``: ``tfx`` reads the train split twice, once for the analysis and once for the
    transform, as TFX's executor does (``TransformProcessor._RunBeamImpl``: "we pay the cost
    to read the same dataset (analyze_data_list) again here to prevent certain beam runner
    from doing large temp materialization"); ``once`` analyses and transforms train from one
    read (``AnalyzeAndTransformDataset``), the least a bare TFT pipeline needs.
    """
    if reads not in ("tfx", "once"):
        raise ValueError(f"reads: tfx or once, got {reads!r}")
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    from tfx_metric_learning.trainer_module import preprocessing

    class Encode(beam.DoFn):
        """``(record batch, passthrough)`` -> serialized tf.Examples of the batch's rows."""

        def __init__(self, schema):
            self._schema = schema

        def setup(self):
            self._encoder = example_coder.RecordBatchToExamplesEncoder(self._schema)

        def process(self, element):
            yield from self._encoder.encode(element[0])

    examples = artifact(root, "FileBasedExampleGen", "examples")
    schema = io_utils.parse_pbtxt_file(
        os.path.join(artifact(root, "SchemaGen", "schema"), "schema.pbtxt"), schema_pb2.Schema()
    )
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config={"label_column": "label"})
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    sources = {
        split: tfxio.TFExampleRecord(
            file_pattern=os.path.join(examples, f"Split-{split}", "*"), schema=schema
        )
        for split in splits_of(artifact(root, "Transform", "transformed_examples"))
    }
    with (
        beam.Pipeline(argv=beam_args(workers)) as p,
        tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=out)),
    ):
        data = {
            split: (p | f"Read[{split}]" >> source.BeamSource(), source.TensorAdapterConfig())
            for split, source in sources.items()
        }
        if reads == "once":
            (train, metadata), transform_fn = data["train"] | tft_beam.AnalyzeAndTransformDataset(
                fn, output_record_batches=True
            )
            transformed = {"train": train}
        else:
            transform_fn = data["train"] | tft_beam.AnalyzeDataset(fn)
            metadata = transform_fn[1]
            data["train"] = (
                p | "Read[train, again]" >> sources["train"].BeamSource(),
                sources["train"].TensorAdapterConfig(),
            )
            transformed = {}
        for split in sources:
            if split not in transformed:
                transformed[split], _ = (
                    data[split],
                    transform_fn,
                ) | f"Transform[{split}]" >> tft_beam.TransformDataset(output_record_batches=True)
        for split, rows in transformed.items():
            _ = (
                rows
                | f"Encode[{split}]" >> beam.ParDo(Encode(metadata.dataset_metadata.schema))
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    os.path.join(out, f"Split-{split}", "transformed_examples"),
                    file_name_suffix=".gz",
                )
            )
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(out, "transform_graph"))
    return time.perf_counter() - started


def fit(root: str, epochs: str = "1") -> tuple[float, float]:
    """(seconds to parse PairGen's train split into arrays, seconds of plain ``fit``)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx.utils import io_utils

    from tfx_metric_learning.core import keys, records
    from tfx_metric_learning.trainer_module import datasets
    from tfx_metric_learning.trainer_module import model as model_lib
    from tfx_metric_learning.trainer_module.settings import TrainingSettings

    split = os.path.join(artifact(root, "PairGen", "examples"), "Split-train")
    schema = io_utils.parse_pbtxt_file(
        os.path.join(artifact(root, "PairGen", "schema"), "schema.pbtxt"), schema_pb2.Schema()
    )
    spec = {
        k: v
        for k, v in schema_utils.schema_as_feature_spec(schema).feature_spec.items()
        if k in (keys.FEATURES, keys.LABEL)
    }
    started = time.perf_counter()
    xs, ys = [], []
    for path in sorted(glob.glob(os.path.join(split, "*"))):
        for batch in records.iter_batches(path, 65536):
            parsed = tf.io.parse_example(tf.constant(batch), spec)
            xs.append(parsed[keys.FEATURES].numpy())
            ys.append(datasets.label_key(parsed[keys.LABEL]).numpy())
    x, y = np.concatenate(xs), np.concatenate(ys)
    read = time.perf_counter() - started
    training = TrainingSettings()
    graph = tft.TFTransformOutput(artifact(root, "Transform", "transform_graph"))
    num_classes = graph.vocabulary_size_by_name(keys.LABEL)
    _, trainer = model_lib.build_trainer(training, x.shape[1], num_classes)
    started = time.perf_counter()
    trainer.fit(x, y, batch_size=training.batch_size, epochs=int(epochs), shuffle=True, verbose=0)
    return read, time.perf_counter() - started


def embed(root: str, batch: str = "1024") -> tuple[float, int]:
    """(seconds, rows): the candidate's ``serve_examples`` over the raw eval split, one pass.

    The serialized examples read with ``records.iter_batches`` (as the evaluator's shards are)
    and embedded ``batch`` at a time in this process; nothing written.
    """
    import tensorflow as tf
    from tfx.utils import path_utils

    from tfx_metric_learning.components.retrieval_evaluator import embeddings
    from tfx_metric_learning.core import records

    model = path_utils.serving_model_path(artifact(root, "Trainer", "model"))
    split = os.path.join(artifact(root, "FileBasedExampleGen", "examples"), "Split-eval")
    started = time.perf_counter()
    fn = tf.saved_model.load(model).signatures[embeddings.EMBED_SIGNATURE]
    rows = 0
    for path in sorted(glob.glob(os.path.join(split, "*"))):
        for serialized in records.iter_batches(path, int(batch)):
            rows += len(fn(examples=tf.constant(serialized))["embedding"].numpy())
    return time.perf_counter() - started, rows


def knn(root: str, max_queries: str = "0") -> tuple[float, int, int, int]:
    """(faiss seconds, queries, rows, k): the candidate's eval queries against the eval split.

    The queries are the rows the evaluator scores: all of them, or with ``max_queries`` its
    seeded sample (``embeddings.sample_rows``); k is the largest class. faiss's exact search
    with the BLAS blocks the evaluator's search uses (``search.knn``), so that the ceiling is
    not slower than what it bounds.
    """
    import numpy as np

    from tfx_metric_learning.components.retrieval_evaluator import embeddings
    from tfx_metric_learning.core.retrieval import search

    emb_dir = os.path.join(artifact(root, "RetrievalEvaluator", "evaluation"), "embeddings")
    shards = embeddings.EmbeddingShards(emb_dir, "candidate", "eval")
    labels, keys = shards.index()
    x = np.ascontiguousarray(shards.take(np.arange(len(labels))), dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    queries = x[embeddings.sample_rows(keys, int(max_queries))]
    k = int(np.unique(labels, return_counts=True)[1].max())
    started = time.perf_counter()
    search.knn(queries, x, k)
    return time.perf_counter() - started, len(queries), len(labels), k


def machine() -> tuple[float, float]:
    """(BLAS seconds, protobuf seconds): fixed work that says how fast this machine is today.

    The same machine has run the pipeline 1.6x slower one day than another; these two fixed
    workloads, the kinds of work the pipeline's time goes to, are printed beside its seconds
    so that runs of different days can be compared: faiss's exhaustive k-NN of 20,000 random
    unit vectors against 300,000 (d 64, k 10: the evaluator's search, BLAS on every core),
    and building, serialising and parsing 300,000 tf.Examples of 64 floats (the Beam
    components' per-row work, one core).
    """
    import faiss
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300_000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    started = time.perf_counter()
    faiss.knn(x[:20_000], x, 10, metric=faiss.METRIC_INNER_PRODUCT)
    blas = time.perf_counter() - started
    rows = x.tolist()
    started = time.perf_counter()
    for row in rows:
        example = tf.train.Example()
        example.features.feature["x"].float_list.value.extend(row)
        tf.train.Example.FromString(example.SerializeToString())
    return blas, time.perf_counter() - started
