"""Benchmark: the whole pipeline at growing sizes, each component against a ceiling.

For each size in ``--sizes`` (default 20,000, 200,000 and 1,000,000 rows) a synthetic CSV of
``--features`` numeric features (default 64) and ``--classes`` classes (default 200) is
written (class centres plus noise, not timed), then, each in a fresh process:

- **pipeline**: ``metric-learning run --data CSV --epochs 1`` (the CLI with its default
  Beam arguments), with per component the wall time its progress line reports, rows per
  second (the CSV's rows over that time) and the peak RSS of the whole process tree while it
  ran (polled every 0.2 s: Beam workers are child processes);
- **ceilings** (``_ceilings``), each in its own fresh process on the same runner, on the
  data of that run: ExampleGen vs a bare Beam pipeline reading the same CSV with tfx-bsl's CSV
  decoder (what TFX's ``CsvExampleGen`` uses) and writing tf.Examples; StatisticsGen vs bare
  TFDV; Transform vs bare TFT with the same ``preprocessing_fn``; the Trainer vs plain ``fit``
  on the same rows in memory; the evaluator vs one bare faiss k-NN of its eval embeddings;
- with ``--workers``, ExampleGen alone through its executor on Beam's DirectRunner with 1
  and with 2 worker processes (``direct_running_mode=multi_processing``).

The printed table gives per component seconds, rows/s, peak MB, the ceiling's seconds and
the ratio ceiling / component (1 = as fast as the bare library; ExampleGen's target is
>= 0.7). The evaluator's own split of its time (embedding, each scoring) is printed under it.

    .venv/bin/python benchmarks/pipeline_scale.py [--sizes 20000,200000,1000000] [--workers]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import _ceilings
import numpy as np
import psutil

from tfx_metric_learning.components.retrieval_evaluator.settings import EvaluationSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS = re.compile(r"^\[\d+/\d+\] (\S+) (done|cached|skipped) \(([\d.]+) s\)")
STARTED = re.compile(r"^\[\d+/\d+\] (\S+) \.\.\.$")
CHUNK = 50_000


def write_csv(path: str, rows: int, features: int, classes: int, seed: int = 0) -> None:
    """``rows`` rows: class centre N(0, 1) + N(0, 1) noise per feature, label ``c<k>`` last.

    The classes overlap (the raw rows' MAP@R is about 0.87, not 1), so the metrics mean
    something.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features)).astype(np.float32)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(features)] + ["label"]) + "\n")
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            y = rng.integers(0, classes, n)
            x = centres[y] + rng.normal(size=(n, features)).astype(np.float32)
            f.writelines(
                ",".join(f"{v:.5g}" for v in row) + f",c{label}\n"
                for row, label in zip(x.tolist(), y.tolist(), strict=True)
            )


def tree_rss_mb(process: psutil.Process) -> float:
    """RSS of ``process`` and all its descendants, in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_measured(command: list[str], env: dict) -> tuple[list[str], dict[str, float], float]:
    """Runs ``command``; its output lines, peak tree RSS per component (MB), wall seconds."""
    started = time.time()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    handle = psutil.Process(proc.pid)
    lines: list[str] = []
    current = ["(start)"]
    peaks: dict[str, float] = {}

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            found = STARTED.match(lines[-1])
            if found:
                current[0] = found.group(1)

    reader = threading.Thread(target=read)
    reader.start()
    while proc.poll() is None:
        rss = tree_rss_mb(handle)
        peaks[current[0]] = max(peaks.get(current[0], 0.0), rss)
        peaks["(all)"] = max(peaks.get("(all)", 0.0), rss)
        time.sleep(0.2)
    reader.join()
    if proc.returncode != 0:
        sys.exit("\n".join(lines[-40:]) + f"\nfailed: {' '.join(command)}")
    return lines, peaks, time.time() - started


def env_for_children() -> dict:
    """The current environment, with TensorFlow's legacy Keras and quiet C++ logs."""
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")


def pipeline_run(csv: str, work: str, epochs: int) -> dict:
    """The whole pipeline through the CLI in a fresh process; per-component figures."""
    command = [
        sys.executable, "-u", "-m", "tfx_metric_learning.pipeline.cli", "run",
        "--data", csv, "--pipeline-root", os.path.join(work, "root"), "--epochs", str(epochs),
    ]  # fmt: skip
    lines, peaks, wall = run_measured(command, env_for_children())
    seconds = {}
    for line in lines:
        found = PROGRESS.match(line)
        if found:
            seconds[found.group(1)] = float(found.group(3))
    return {"seconds": seconds, "peaks": peaks, "wall": wall}


def ceiling_main(name: str, *args: str) -> None:
    """One ceiling of ``_ceilings`` (run in its own process): prints its figures as JSON."""
    import tfx_metric_learning  # noqa: F401  (sets TF_USE_LEGACY_KERAS)

    figures = getattr(_ceilings, name)(*args)
    print("FIGURES " + json.dumps(figures))


def example_gen_main(csv: str, out: str, workers: int) -> None:
    """ExampleGen's executor alone (own process) on 1 or more workers: prints its seconds."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts, standard_component_specs
    from tfx.utils import proto_utils

    import tfx_metric_learning  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    from tfx_metric_learning.components.example_gen import component, executor
    from tfx_metric_learning.components.example_gen.settings import IngestSettings

    gen = component.labelled_example_gen(
        os.path.dirname(csv), os.path.basename(csv), IngestSettings(label_column="label")
    )
    props = dict(gen.exec_properties)
    for key in (
        standard_component_specs.INPUT_CONFIG_KEY,
        standard_component_specs.OUTPUT_CONFIG_KEY,
        standard_component_specs.CUSTOM_CONFIG_KEY,
    ):
        if props.get(key) is not None and not isinstance(props[key], str):
            props[key] = proto_utils.proto_to_json(props[key])
    examples = standard_artifacts.Examples()
    examples.uri = out
    mode = "in_memory" if workers == 1 else "multi_processing"
    args = [
        "--runner=FnApiRunner", f"--direct_running_mode={mode}",
        f"--direct_num_workers={workers}", "--sdk_container_image=this-environment",
    ]  # fmt: skip
    started = time.time()
    executor.Executor(BaseBeamExecutor.Context(beam_pipeline_args=args)).Do(
        {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, props
    )
    print("FIGURES " + json.dumps(time.time() - started))


def child(*args: str) -> tuple[Any, float]:
    """Runs this file with ``args`` in a fresh process: (the FIGURES it printed, peak tree MB)."""
    command = [sys.executable, "-u", os.path.abspath(__file__), *args]
    lines, peaks, _ = run_measured(command, env_for_children())
    figures = [json.loads(line[len("FIGURES ") :]) for line in lines if line.startswith("FIGURES ")]
    return figures[-1], peaks["(all)"]


def measure_ceilings(csv: str, root: str, scratch: str, epochs: int) -> dict:
    """Component id -> (ceiling seconds, what the ceiling is), each in a fresh process."""
    os.makedirs(scratch, exist_ok=True)
    found = {}
    seconds, _ = child("--child", "ceiling", "example_gen", csv, os.path.join(scratch, "eg"))
    found["FileBasedExampleGen"] = (seconds, "bare tfx-bsl CSV decoder -> tf.Example")
    seconds, _ = child("--child", "ceiling", "statistics", root, os.path.join(scratch, "stats"))
    found["StatisticsGen"] = (seconds, "bare TFDV GenerateStatistics, every split")
    seconds, _ = child("--child", "ceiling", "transform", root, os.path.join(scratch, "tft"))
    found["Transform"] = (seconds, "bare TFT, same preprocessing_fn")
    (read, fitted), _ = child("--child", "ceiling", "fit", root, str(epochs))
    found["Trainer"] = (fitted, f"plain fit in memory (parsing into arrays {read:.1f} s)")
    queries = str(EvaluationSettings().max_eval_queries)
    (faiss_s, q, n, k), _ = child("--child", "ceiling", "knn", root, queries)
    found["RetrievalEvaluator"] = (faiss_s, f"bare faiss k-NN, {q:,} of {n:,} eval rows, k {k}")
    return found


def main() -> None:
    """Parses the options; runs the sizes (or, with ``--child``, one measured child)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000,1000000")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", action="store_true", help="ExampleGen on 1 and 2 workers")
    parser.add_argument("--work-dir", default="", help="kept when given (default: a temp dir)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ceiling":
            ceiling_main(*rest)
        else:
            example_gen_main(rest[0], rest[1], int(rest[2]))
        return

    work = args.work_dir or tempfile.mkdtemp(prefix="pipeline_scale-")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"pipeline_scale: {args.features} features, {args.classes} classes, --epochs "
        f"{args.epochs}, {os.cpu_count()} CPUs; sizes {', '.join(f'{n:,}' for n in sizes)}"
    )
    for rows in sizes:
        folder = os.path.join(work, f"rows-{rows}")
        csv = os.path.join(folder, "data", "data.csv")
        if not os.path.exists(csv):
            write_csv(csv, rows, args.features, args.classes)
        shutil.rmtree(os.path.join(folder, "root"), ignore_errors=True)
        run = pipeline_run(csv, folder, args.epochs)
        root = os.path.join(folder, "root")
        scratch = os.path.join(folder, "scratch")
        ceilings = measure_ceilings(csv, root, scratch, args.epochs)
        print(f"\n{rows:,} rows ({os.path.getsize(csv) / 2**20:.0f} MB CSV)")
        print(
            f"  {'component':<30}{'seconds':>8}{'rows/s':>10}{'peak MB':>9}"
            f"{'ceiling s':>11}{'ratio':>7}  ceiling"
        )
        for name, took in run["seconds"].items():
            rate = f"{rows / took:,.0f}" if took > 0 else "-"
            peak = run["peaks"].get(name)  # None: ended before the first 0.2 s poll
            peak_text = f"{peak:.0f}" if peak else "-"
            line = f"  {name:<30}{took:>8.1f}{rate:>10}{peak_text:>9}"
            if name in ceilings:
                seconds, what = ceilings[name]
                line += f"{seconds:>11.1f}{seconds / took:>7.2f}  {what}"
            print(line)
        total = sum(run["seconds"].values())
        print(
            f"  {'pipeline (components)':<30}{total:>8.1f}{rows / total:>10,.0f}"
            f"{run['peaks']['(all)']:>9.0f}  process wall {run['wall']:.1f} s, "
            f"{1e6 * run['wall'] / rows:.0f} us/row"
        )
        faiss_s = ceilings["RetrievalEvaluator"][0]
        evaluation = _ceilings.artifact(root, "RetrievalEvaluator", "evaluation")
        with open(os.path.join(evaluation, "evaluation.json")) as f:
            inside = json.load(f)["seconds"]
        print(
            "  evaluator inside: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in inside.items())
            + f"; bare faiss / score_candidate {faiss_s / inside['score_candidate']:.2f}"
        )
        if args.workers:
            one, _ = child("--child", "eg", csv, os.path.join(scratch, "w1"), "1")
            two, _ = child("--child", "eg", csv, os.path.join(scratch, "w2"), "2")
            print(
                f"  ExampleGen alone: 1 worker {one:.1f} s, 2 workers {two:.1f} s: "
                f"speed-up {one / two:.2f}x"
            )
        shutil.rmtree(scratch, ignore_errors=True)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
