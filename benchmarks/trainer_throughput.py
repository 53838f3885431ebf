"""Benchmark: the Trainer's input pipeline and training loop vs plain ``fit`` on in-memory arrays.

A transformed train split of ``--rows`` (default 1,000,000) rows is written the way Transform
and PairGen's pass-through mode leave it (GZIP TFRecords of the transformed features, under
the transformed schema of the real ``preprocessing_fn``, analysed by TFT on a 2,000-row raw
sample); rows are class centres plus noise, 64 features, 1,000 classes. In one process, with
one replica, the same encoder, loss and optimiser:

- **ours**: ``datasets.make_dataset`` as ``run_fn`` calls it with the default ``in_memory_mb``
  (the split fits: read and parsed once through TFX's ``DataAccessor``, then a seeded
  permutation per epoch), then ``fit`` under ``distribution.make_strategy()`` (one device: no
  distribution strategy);
- **streamed**: the same with ``in_memory_mb`` 0 (what a split larger than the budget gets:
  TFXIO reading, shuffling and parsing the files every epoch);
- **plain** (the baseline): the same rows as numpy arrays in memory, ``fit(x, y, batch_size,
  shuffle=True)`` with no distribution strategy, the tf_keras way with no input pipeline.

Each is timed over ``--steps`` steps after a warm-up ``fit`` of ``WARMUP`` steps (tracing;
for ours, the read into memory too: printed as set-up), ``--rounds`` times in alternating
order (ours, streamed, plain, then plain, streamed, ours, ...), the fastest kept: on a shared
2-core machine one timing of the same loop varied by up to 50%. It prints examples per second and
the ratios to plain (target >= 0.9 for ours).

    .venv/bin/python benchmarks/trainer_throughput.py [--rows 1000000] [--steps 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _data import write_gzip_tfrecords  # noqa: E402

WARMUP = 50
FEATURES = [f"f{i:02d}" for i in range(64)]


def prepare(work: str, rows: int, classes: int, seed: int = 0):
    """Transform graph (real preprocessing_fn) and the transformed split, written once."""
    from tests.transform_helpers import analyze_and_transform

    graph = os.path.join(work, "transform_graph")
    split = os.path.join(work, "transformed", "Split-train")
    done = os.path.join(work, "_written")
    if os.path.exists(done):
        return graph, split
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, len(FEATURES))).astype(np.float32)
    sample = rng.integers(0, classes, size=2000)
    raw = centres[sample] + rng.normal(scale=0.5, size=(2000, len(FEATURES)))
    rows_raw = [
        dict(zip(FEATURES, map(float, x), strict=True)) | {"label": f"c{y}"}
        for x, y in zip(raw, sample, strict=True)
    ]
    analyze_and_transform(rows_raw, FEATURES, graph)
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(graph)
    vocabulary = output.vocabulary_by_name("label")
    ids = {v.decode(): i for i, v in enumerate(vocabulary)}

    def make(n):
        labels = rng.integers(0, classes, size=n)
        x = centres[labels] + rng.normal(scale=0.5, size=(n, len(FEATURES))).astype(np.float32)
        for row, label in zip(x, labels, strict=True):
            name = f"c{label}"
            ex = tf.train.Example()
            ex.features.feature["features"].float_list.value.extend(row)
            ex.features.feature["label"].bytes_list.value.append(name.encode())
            ex.features.feature["label_id"].int64_list.value.append(ids.get(name, -1))
            ex.features.feature["missing_count"].int64_list.value.append(0)
            yield ex.SerializeToString()

    write_gzip_tfrecords(split, rows, make)
    open(done, "w").close()
    return graph, split


def in_memory(split: str, schema) -> tuple[np.ndarray, np.ndarray]:
    """The split's ``(features, label keys)`` as numpy arrays: plain ``fit``'s input."""
    from tensorflow_transform.tf_metadata import schema_utils

    from tfx_metric_learning.trainer_module import datasets

    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    files = tf.io.gfile.glob(os.path.join(split, "*.gz"))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(65536)
    xs, ys = [], []
    for batch in ds.map(lambda s: tf.io.parse_example(s, spec)):
        xs.append(batch["features"].numpy())
        ys.append(datasets.label_key(batch["label"]).numpy())
    return np.concatenate(xs), np.concatenate(ys)


def main() -> None:
    """Prepares the split, times both loops side by side, prints throughputs and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loss", default="")
    parser.add_argument("--work-dir", default="")
    args = parser.parse_args()
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts

    from tfx_metric_learning.trainer_module import datasets, distribution
    from tfx_metric_learning.trainer_module import model as model_lib
    from tfx_metric_learning.trainer_module.losses import registry
    from tfx_metric_learning.trainer_module.settings import TrainingSettings

    work = args.work_dir or os.path.join(
        tempfile.gettempdir(), f"trainer-throughput-{args.rows}-{args.classes}"
    )
    graph, split = prepare(work, args.rows, args.classes)
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(graph)
    schema = output.transformed_metadata.schema
    training = TrainingSettings(**({"loss": args.loss} if args.loss else {}))
    spec, batch = training.loss_spec, training.batch_size
    print(
        f"Trainer throughput: {args.rows:,} transformed rows x {len(FEATURES)} features, "
        f"{args.classes:,} classes; loss {spec.name}, batch {batch}, {args.steps} steps, "
        f"one replica; work dir {work}"
    )
    examples = standard_artifacts.Examples()
    examples.uri = os.path.dirname(split)
    examples.split_names = artifact_utils.encode_split_names(["train"])
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    start = time.perf_counter()
    x, y = in_memory(split, schema)
    print(f"  in-memory arrays for the baseline read in {time.perf_counter() - start:.0f} s")
    strategy = distribution.make_strategy()
    print(
        f"  strategy: {distribution.describe_strategy(strategy)[0]}, "
        f"{strategy.num_replicas_in_sync} replica(s)"
    )
    num_classes = output.vocabulary_size_by_name("label")

    def model(scope):
        with scope:
            encoder = model_lib.build_encoder(
                len(FEATURES), list(training.hidden_units), training.embedding_dim, seed=0
            )
            loss = registry.build(
                spec.name, training.full_loss_params(), num_classes, training.embedding_dim
            )
            trainer = model_lib.EmbeddingTrainer(encoder, loss, num_classes, seed=0)
            trainer.compile(optimizer=tf.keras.optimizers.Adam(training.learning_rate))
        return trainer

    def ours(budget: int) -> float:
        trainer = model(strategy.scope())
        files = [os.path.join(split, "*")]
        start = time.perf_counter()
        ds = datasets.make_dataset(
            files, accessor, schema, spec, batch, seed=0, rows=args.rows, memory_budget=budget
        )
        trainer.fit(ds, epochs=1, steps_per_epoch=WARMUP, verbose=0)
        ready = time.perf_counter() - start
        start = time.perf_counter()
        trainer.fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
        return time.perf_counter() - start, ready

    def plain() -> float:
        trainer = model(contextlib.nullcontext())
        n = args.steps * batch
        start = time.perf_counter()
        trainer.fit(x[: WARMUP * batch], y[: WARMUP * batch], batch_size=batch, verbose=0)
        ready = time.perf_counter() - start
        start = time.perf_counter()
        trainer.fit(x[:n], y[:n], batch_size=batch, epochs=1, shuffle=True, verbose=0)
        return time.perf_counter() - start, ready

    variants = {
        "ours": lambda: ours(datasets.memory_budget(training)),
        "streamed": lambda: ours(0),
        "plain": plain,
    }
    times = {name: [] for name in variants}
    order = [list(variants), list(reversed(variants))]
    for name in [n for r in range(args.rounds) for n in order[r % 2]]:
        seconds, ready = variants[name]()
        times[name].append(seconds)
        rate = args.steps * batch / seconds
        print(
            f"  {name:8s} {seconds:7.1f} s  {rate:10,.0f} examples/s  "
            f"(set-up + {WARMUP} warm-up steps {ready:.1f} s)"
        )
    best = {name: min(t) for name, t in times.items()}
    for name in ("ours", "streamed"):
        ratio = best["plain"] / best[name]
        print(f"  throughput ratio {name} / plain {ratio:.3f}  (target >= 0.9 for ours)")


if __name__ == "__main__":
    main()
