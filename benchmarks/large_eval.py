"""Benchmark: the RetrievalEvaluator executor end to end on a large eval split, a query sample.

Synthetic eval split (default 1,000,000 rows, 5,000 classes of 200): one float feature ``x`` of
128 values per row, a class centre plus noise, written as GZIP TFRecords the way ExampleGen
writes them. The model is a SavedModel with the three signatures this project's Trainer
exports (``serve_examples``: ``normalise(x @ W)`` with a fixed random 128 x 64 ``W``;
``transform_features``: ``x``; ``serving_default``: raw ``x``), so the executor scores the
candidate and both raw-feature baselines, as in a pipeline run. The executor's ``Do`` runs in a
fresh process (Beam in memory, the local runner's ``DEFAULT_BEAM_ARGS``) with ``max_eval_queries``
(default 100,000): every source's embeddings are written as shards by Beam, the sampled
queries search the whole split tile by tile. Printed: the executor's wall time, its phases
(from its ``evaluation.json``), its peak memory (VmHWM; the target is under 4 GB) and the
candidate's metrics with their sampling errors. The split is written once into ``--work-dir``
and reused.

    .venv/bin/python benchmarks/large_eval.py [--rows 1000000] [--queries 100000]
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
from _data import write_gzip_tfrecords  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

LIMIT_MB = 4096


def write_split(folder: str, rows: int, dim: int, classes: int, seed: int = 0) -> None:
    """``rows`` examples around ``classes`` centres, GZIP TFRecords in ``Split-eval``."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)

    def make(n):
        labels = rng.integers(0, classes, size=n)
        x = centres[labels] + rng.normal(scale=0.9, size=(n, dim)).astype(np.float32)
        for row, label in zip(x, labels, strict=True):
            ex = tf.train.Example()
            ex.features.feature["x"].float_list.value.extend(row)
            ex.features.feature["label"].bytes_list.value.append(f"c{label}".encode())
            yield ex.SerializeToString(deterministic=True)

    write_gzip_tfrecords(os.path.join(folder, "Split-eval"), rows, make)


def save_model(path: str, dim: int, embedding_dim: int, seed: int = 1) -> None:
    """A SavedModel with the Trainer's three signatures (see the module doc)."""
    import tensorflow as tf

    weights = np.random.default_rng(seed).normal(size=(dim, embedding_dim)).astype(np.float32)

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.constant(weights)

        def _x(self, examples):
            spec = {"x": tf.io.FixedLenFeature([dim], tf.float32)}
            return tf.io.parse_example(examples, spec)["x"]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_examples(self, examples):
            return {"embedding": tf.math.l2_normalize(self._x(examples) @ self.w, axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def transform_features(self, examples):
            return {"features": self._x(examples)}

        @tf.function(input_signature=[{"x": tf.TensorSpec([None, dim], tf.float32, name="x")}])
        def serve_raw(self, features):
            return {"embedding": tf.math.l2_normalize(features["x"] @ self.w, axis=1)}

    m = Model()
    signatures = {
        "serve_examples": m.serve_examples,
        "transform_features": m.transform_features,
        "serving_default": m.serve_raw,
    }
    tf.saved_model.save(m, os.path.join(path, "Format-Serving"), signatures=signatures)


def run_executor(work: str, queries: int) -> None:
    """The executor's Do on the split and model in ``work``; prints wall time and peak memory."""
    from tfx.types import artifact_utils, standard_artifacts

    from tfx_metric_learning.components.retrieval_evaluator import executor
    from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings
    from tfx_metric_learning.pipeline.local_runner import DEFAULT_BEAM_ARGS

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(work, "examples")
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    model = standard_artifacts.Model()
    model.uri, model.id = os.path.join(work, "model"), 1
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = tempfile.mkdtemp(prefix="evaluation-", dir=work)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = tempfile.mkdtemp(prefix="blessing-", dir=work)
    settings = EvaluationSettings(max_eval_queries=queries, thresholds={"map_at_r": 0.0})
    context = executor.Executor.Context(beam_pipeline_args=DEFAULT_BEAM_ARGS, tmp_dir=work)
    start = time.perf_counter()
    executor.Executor(context).Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {executor.LABEL_COLUMN_KEY: "label", executor.SETTINGS_KEY: settings.to_json()},
    )
    seconds = time.perf_counter() - start
    record_path = os.path.join(evaluation.uri, executor.EVALUATION_FILE)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb(), "record": record_path}))


def main() -> None:
    """Writes the split and model once, runs the executor in a fresh process, prints figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=5_000)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--work-dir", default="")
    parser.add_argument("--executor-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work_dir or os.path.join(
        tempfile.gettempdir(), f"large-eval-{args.rows}x{args.dim}-{args.classes}"
    )
    if args.executor_only:
        run_executor(work, args.queries)
        return

    print(
        f"RetrievalEvaluator executor: eval split {args.rows:,} rows x {args.dim} dims, "
        f"{args.classes:,} classes; {args.queries:,} sampled queries; embedding dim "
        f"{args.embedding_dim}; work dir {work}"
    )
    if not os.path.exists(os.path.join(work, "model", "Format-Serving")):
        start = time.perf_counter()
        write_split(os.path.join(work, "examples"), args.rows, args.dim, args.classes)
        save_model(os.path.join(work, "model"), args.dim, args.embedding_dim)
        print(f"  split and model written in {time.perf_counter() - start:.0f} s (not counted)")
    cmd = [sys.executable, __file__, "--executor-only", "--work-dir", work]
    cmd += ["--queries", str(args.queries)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the executor failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    record = json.load(open(result["record"]))
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in record["seconds"].items())
    verdict = "under" if result["peak_mb"] < LIMIT_MB else "OVER"
    print(f"  executor wall time {result['seconds']:.0f} s ({phases})")
    print(f"  peak RSS {result['peak_mb']:.0f} MB: {verdict} the {LIMIT_MB} MB limit")
    cand = record["candidate_model"]
    for name in ("map_at_r", "r_precision", "precision_at_1", "recall_at_10"):
        error = cand["sampling_error"][name]
        print(f"  candidate {name:15s} {cand['metrics'][name]:.4f} +- {error:.4f} (95%)")
    for name, raw in record["raw_baselines"].items():
        print(f"  {name:24s} map_at_r {raw['map_at_r']:.4f}")
    print(f"  queries scored {record['queries']['scored']:,}")


if __name__ == "__main__":
    main()
