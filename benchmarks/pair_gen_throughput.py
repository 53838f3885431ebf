"""Benchmark: PairGen (triplets) alone on Beam's DirectRunner vs a bare read/write pipeline.

Synthetic clustered data (default 1,000 classes, 64 features) is written as Transform would
write it. In the same run, and each in a fresh process (so peak memory is its own), we time:

- the ceiling: a bare Beam pipeline that reads the rows, re-serialises them and writes them
  (one ``tf.train.Example`` parse and serialise per row, as the issue defines it);
- a stricter ceiling: the same copy with PairGen's own coders (batched C++ decoding, direct
  serialisation, one file streamed per worker), so PairGen's coders do not flatter the ratio;
- PairGen's executor in ``triplets`` mode (one triplet per anchor).

It prints rows (triplets) per second, the ratio to the ceiling, and peak memory (VmHWM),
for each size given (default 100,000 and 1,000,000 rows).

    .venv/bin/python benchmarks/pair_gen_throughput.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

from tfx_metric_learning.components.pair_gen import spec

DIM = 64
SHARDS = 8


def write_data(root: str, rows: int, classes: int, seed: int = 0) -> None:
    """Transformed examples (features, label, label_id, missing_count) and their schema."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, DIM)).astype(np.float32)
    folder = os.path.join(root, "examples", "Split-train")
    os.makedirs(folder)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = [
        tf.io.TFRecordWriter(os.path.join(folder, f"data-{i:05d}.gz"), options)
        for i in range(SHARDS)
    ]
    chunk = 50_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        labels = rng.integers(classes, size=n)
        feats = centres[labels] + rng.normal(scale=0.5, size=(n, DIM)).astype(np.float32)
        for i in range(n):
            ex = tf.train.Example()
            f = ex.features.feature
            f["features"].float_list.value.extend(feats[i])
            f["label"].bytes_list.value.append(str(labels[i]).encode())
            f["label_id"].int64_list.value.append(int(labels[i]))
            f["missing_count"].int64_list.value.append(0)
            writers[(start + i) % SHARDS].write(ex.SerializeToString())
    for w in writers:
        w.close()
    schema = schema_pb2.Schema()
    for name, kind, shape in (
        ("features", schema_pb2.FLOAT, [DIM]),
        ("label", schema_pb2.BYTES, []),
        ("label_id", schema_pb2.INT, []),
        ("missing_count", schema_pb2.INT, []),
    ):
        feature = schema.feature.add(name=name, type=kind)
        for size in shape:
            feature.shape.dim.add(size=size)
    io_utils.write_pbtxt_file(
        os.path.join(root, "transform_graph", "transformed_metadata", "schema.pbtxt"), schema
    )


def count_records(folder: str) -> int:
    """Records in every gzipped TFRecord file under ``folder`` (not timed)."""
    paths = [
        os.path.join(d, name)
        for d, _, names in os.walk(folder)
        for name in names
        if name.endswith(".gz")
    ]
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    return sum(sum(1 for _ in tf.compat.v1.io.tf_record_iterator(p, options)) for p in paths)


def run_ceiling(root: str, out: str) -> None:
    """Read -> parse and re-serialise -> write, nothing else."""
    import apache_beam as beam

    pattern = os.path.join(root, "examples", "Split-train", "*")
    with beam.Pipeline(argv=["--runner=DirectRunner"]) as p:
        _ = (
            p
            | beam.io.ReadFromTFRecord(pattern)
            | beam.Map(lambda r: tf.train.Example.FromString(r).SerializeToString())
            | beam.io.WriteToTFRecord(os.path.join(out, "data"), file_name_suffix=".gz")
        )


def run_fast_ceiling(root: str, out: str) -> None:
    """Read -> decode in batches -> serialise directly -> write: PairGen's I/O, no sampling."""
    import apache_beam as beam

    from tfx_metric_learning.components.pair_gen import example_bytes, steps
    from tfx_metric_learning.core import keys
    from tfx_metric_learning.core.records import iter_batches

    def copy(element):
        index, path = element

        def records():
            for batch in iter_batches(path, 20_000):
                labels, feats = steps.decode(batch, path, 0, keys.LABEL, keys.FEATURES)
                columns = {
                    keys.FEATURES: ("float", feats),
                    keys.LABEL: ("bytes", [x.encode() for x in labels]),
                    keys.LABEL_ID: ("int64", [int(x) for x in labels]),
                    "missing_count": ("int64", [0] * len(labels)),
                }
                yield from example_bytes.serialize(columns, len(labels))

        steps.write_records(os.path.join(out, f"part-{index:05d}.gz"), records())
        yield index

    files = sorted(tf.io.gfile.glob(os.path.join(root, "examples", "Split-train", "*")))
    with beam.Pipeline(argv=["--runner=DirectRunner"]) as p:
        _ = p | beam.Create(list(enumerate(files))) | beam.Reshuffle() | beam.ParDo(copy)


def run_pair_gen(root: str, out: str) -> None:
    """PairGen's executor, triplets mode, one triplet per anchor."""
    from tfx.types import artifact_utils, standard_artifacts

    from tfx_metric_learning.components.pair_gen import executor
    from tfx_metric_learning.components.pair_gen.settings import PairSettings

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(root, "examples")
    examples.split_names = artifact_utils.encode_split_names(["train"])
    graph = standard_artifacts.TransformGraph()
    graph.uri = os.path.join(root, "transform_graph")
    out_examples = standard_artifacts.Examples()
    out_examples.uri = os.path.join(out, "examples")
    out_schema = standard_artifacts.Schema()
    out_schema.uri = os.path.join(out, "schema")
    context = executor.Executor.Context(beam_pipeline_args=["--runner=DirectRunner"])
    executor.Executor(context).Do(
        {"transformed_examples": [examples], "transform_graph": [graph]},
        {"examples": [out_examples], "schema": [out_schema]},
        {spec.SETTINGS_KEY: PairSettings(mode="triplets", triplets_per_anchor=1, seed=1).to_json()},
    )


def child(kind: str, root: str) -> None:
    """Runs one pipeline and prints its count, time and peak memory as JSON."""
    out = tempfile.mkdtemp()
    start = time.perf_counter()
    run = {"ceiling": run_ceiling, "fast_ceiling": run_fast_ceiling, "pair_gen": run_pair_gen}
    run[kind](root, out)
    seconds = time.perf_counter() - start
    count = count_records(out)
    print(json.dumps({"count": count, "seconds": seconds, "peak_mb": peak_rss_mb()}))


def main() -> None:
    """Writes the data for each size and times both pipelines in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    for rows in args.rows:
        root = tempfile.mkdtemp()
        write_data(root, rows, args.classes)
        results = {}
        for kind in ("ceiling", "fast_ceiling", "pair_gen"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", kind, root],
                capture_output=True,
                text=True,
                check=True,
            )
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        c, f, g = results["ceiling"], results["fast_ceiling"], results["pair_gen"]
        c_rate, g_rate = c["count"] / c["seconds"], g["count"] / g["seconds"]
        f_rate = f["count"] / f["seconds"]
        print(f"{rows:,} rows, {args.classes} classes, {DIM} features (DirectRunner, in-process)")
        print(
            f"  ceiling (read, re-serialise, write)  {c_rate:9,.0f} rows/s      "
            f"peak RSS {c['peak_mb']:6.0f} MB"
        )
        print(
            f"  ceiling, PairGen's coders            {f_rate:9,.0f} rows/s      "
            f"peak RSS {f['peak_mb']:6.0f} MB"
        )
        print(
            f"  PairGen triplets                     {g_rate:9,.0f} triplets/s  "
            f"peak RSS {g['peak_mb']:6.0f} MB"
        )
        print(
            f"  ratio PairGen/ceiling {g_rate / c_rate:.2f}  (target >= 0.5); "
            f"PairGen/ceiling with its coders {g_rate / f_rate:.2f}"
        )


if __name__ == "__main__":
    main()
