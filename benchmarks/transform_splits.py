"""Benchmark: TFX's Transform and PairGen with and without the eval split, side by side.

The pipeline's Transform transforms train and the Trainer's eval split (valid, when there is
one: ``pipeline._trainer_eval_splits``); it used to transform the eval split as well, which
nothing reads transformed (the RetrievalEvaluator, InputBaselines and the GalleryIndex read it
raw), and PairGen then built pairs of it for nobody. On the artifacts of a
``pipeline_scale.py`` run (``--root``: its pipeline root, whose ExampleGen examples and
SchemaGen schema are read), each in a fresh process, alternating, ``--rounds`` times each:
TFX's Transform executor (``testing.run_executor``: the pipeline's own component and
properties, the ``splits_config`` set to train, eval and valid, or to train and valid) on
``--workers`` Beam worker processes, then PairGen's executor on what it wrote. Prints the
seconds of each, the ratio of the medians (before / after), and the train and valid splits
Transform wrote both ways: their rows, their rows per label and how far the features' means
differ (``split_summary``).

    .venv/bin/python benchmarks/transform_splits.py
        --root <pipeline_scale.py's --work-dir>/rows-1000000/root [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import _ceilings  # noqa: E402
import numpy as np  # noqa: E402

SPLITS = {"before": ["train", "eval", "valid"], "after": ["train", "valid"]}


def run_variant(root: str, out: str, variant: str, workers: str) -> None:
    """One variant, in this process: prints ``FIGURES [transform_s, pair_gen_s]``."""
    from tfx.proto import transform_pb2
    from tfx.types import standard_component_specs as tfx_keys

    from tfx_metric_learning.components.pair_gen import spec as pair_gen_spec
    from tfx_metric_learning.pipeline import pipeline as pipeline_lib
    from tfx_metric_learning.pipeline.config import PipelineConfig
    from tfx_metric_learning.testing.executors import run_executor

    csv = glob.glob(os.path.join(os.path.dirname(root), "data", "*.csv"))[0]
    components = {
        c.id: c
        for c in pipeline_lib.create_pipeline(
            PipelineConfig(pipeline_root=os.path.join(out, "unused-root")), csv
        ).components
    }
    args = _ceilings.beam_args(workers)
    started = time.perf_counter()
    transformed = run_executor(
        components["Transform"],
        inputs={
            tfx_keys.EXAMPLES_KEY: _ceilings.artifact(root, "FileBasedExampleGen", "examples"),
            tfx_keys.SCHEMA_KEY: _ceilings.artifact(root, "SchemaGen", "schema"),
        },
        exec_properties={
            tfx_keys.SPLITS_CONFIG_KEY: transform_pb2.SplitsConfig(
                analyze=["train"], transform=SPLITS[variant]
            )
        },
        output_dir=os.path.join(out, "transform"),
        beam_pipeline_args=args,
    )
    transform_s = time.perf_counter() - started
    started = time.perf_counter()
    run_executor(
        components["PairGen"],
        inputs={
            pair_gen_spec.TRANSFORMED_EXAMPLES_KEY: transformed[tfx_keys.TRANSFORMED_EXAMPLES_KEY],
            pair_gen_spec.TRANSFORM_GRAPH_KEY: transformed[tfx_keys.TRANSFORM_GRAPH_KEY],
        },
        output_dir=os.path.join(out, "pair_gen"),
        beam_pipeline_args=args,
    )
    pair_gen_s = time.perf_counter() - started
    print("FIGURES " + json.dumps([transform_s, pair_gen_s]), flush=True)


def split_summary(folder: str, label_column: str) -> tuple[int, dict[str, int], np.ndarray]:
    """``(rows, rows per label, per-column mean of the features)`` of a transformed split.

    Order-free: two runs of TFX's Transform write the same rows in another order and another
    map order, and their features may differ in the last bits (the analysis sums in another
    order), so records are compared by these summaries, not byte for byte.
    """
    import tensorflow as tf

    from tfx_metric_learning.core import keys, records

    labels: dict[str, int] = {}
    total, rows = None, 0
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        for record in records.iter_records(path):
            feature = tf.train.Example.FromString(record).features.feature
            label = feature[label_column].bytes_list.value[0].decode()
            labels[label] = labels.get(label, 0) + 1
            values = np.asarray(feature[keys.FEATURES].float_list.value, np.float64)
            total = values if total is None else total + values
            rows += 1
    if total is None:
        raise ValueError(f"no transformed records in {folder}")
    return rows, labels, total / rows


def child(root: str, out: str, variant: str, workers: str) -> list[float]:
    """``run_variant`` in a fresh process; its FIGURES (a failed child's last stderr lines)."""
    command = [sys.executable, "-u", os.path.abspath(__file__), "--child", root, out, variant]
    done = subprocess.run([*command, workers], capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-20:])
        raise RuntimeError(f"the {variant} run failed (exit {done.returncode}):\n{tail}")
    lines = done.stdout.splitlines()
    return json.loads([line for line in lines if line.startswith("FIGURES ")][-1][8:])


def main() -> None:
    """Alternates the two variants; prints their seconds, the ratios and the splits' summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="a pipeline_scale.py run's pipeline root")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_variant(*args.child)
        return
    if not args.root:
        parser.error("--root is required")
    _ceilings.artifact(args.root, "FileBasedExampleGen", "examples")  # names a wrong root
    if not glob.glob(os.path.join(os.path.dirname(args.root), "data", "*.csv")):
        parser.error(f"no data/*.csv beside {args.root}: give a pipeline_scale.py run's root")
    from tfx_metric_learning.pipeline.config import PipelineConfig

    work = tempfile.mkdtemp(prefix="transform-splits-")
    seconds: dict[str, list[list[float]]] = {v: [] for v in SPLITS}
    try:
        for _ in range(args.rounds):
            for variant in SPLITS:
                out = os.path.join(work, variant)
                shutil.rmtree(out, ignore_errors=True)
                seconds[variant].append(child(args.root, out, variant, args.workers))
                print(f"  {variant}: Transform, PairGen {seconds[variant][-1]}", flush=True)
        summaries = {
            split: [
                split_summary(
                    os.path.join(work, v, "transform", "transformed_examples", f"Split-{split}"),
                    PipelineConfig().ingest.label_feature,
                )
                for v in SPLITS
            ]
            for split in ("train", "valid")
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"transform_splits: {args.root}, {args.workers} worker(s), {args.rounds} round(s)")
    for i, name in enumerate(("Transform", "PairGen", "both")):
        med = {v: statistics.median(sum(s) if i == 2 else s[i] for s in seconds[v]) for v in SPLITS}
        runs = {
            v: ", ".join(f"{sum(s) if i == 2 else s[i]:.1f}" for s in seconds[v]) for v in SPLITS
        }
        print(
            f"  {name:<10} train+eval+valid {runs['before']} s; train+valid {runs['after']} s; "
            f"median ratio {med['before'] / med['after']:.2f}x"
        )
    for split, (before, after) in summaries.items():
        print(
            f"  {split}: {before[0]:,} vs {after[0]:,} rows, the same rows per label: "
            f"{before[1] == after[1]}, feature means differ by at most "
            f"{np.abs(before[2] - after[2]).max():.1e}"
        )


if __name__ == "__main__":
    main()
