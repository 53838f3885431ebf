"""Benchmark: the whole pipeline at growing sizes, each component against a ceiling.

For each size in ``--sizes`` (default 20,000, 200,000 and 1,000,000 rows) a synthetic CSV of
``--features`` numeric features (default 64) and ``--classes`` classes (default 200) is
written (class centres plus noise, not timed), then, each in a fresh process:

- **pipeline**: ``metric-learning run --data CSV --epochs 1`` (the CLI with its default
  Beam arguments: in-process, or one worker process per CPU from
  ``beam_policy.PARALLEL_INPUT_BYTES`` of input), with per component the wall time its
  progress line reports, rows per second (the CSV's rows over that time) and the peak RSS of
  the whole process tree while it ran (polled every 0.2 s: Beam workers are child
  processes);
- **ceilings** (``_ceilings``), each in its own fresh process on the same runner and
  workers as the run, on the data of that run: ExampleGen vs a bare Beam pipeline reading
  the same CSV with tfx-bsl's CSV decoder (what TFX's ``CsvExampleGen`` uses) and writing
  tf.Examples; StatisticsGen vs bare TFDV; Transform vs bare TFT with the same
  ``preprocessing_fn``, reading the train split twice as TFX's executor does (the time of a
  one-read TFT pipeline is printed beside it); the Trainer vs plain ``fit`` on the same rows
  in memory; the evaluator vs the sum of its unavoidable parts: embedding the eval split with
  the candidate SavedModel in one pass, plus one bare faiss k-NN of its query sample;
- with ``--workers``, the pipeline again with the other worker setting (``--beam-workers 2``
  where the automatic choice was in-process, ``--beam-workers 1`` where it was workers): per
  component in-process vs worker processes and the speed-up.

First it times ``_ceilings.machine``'s fixed work (a BLAS-bound search and per-row protobuf
work): the same machine is faster some days than others, and those two figures tell runs of
different days apart. The printed table gives per component seconds, its share of the
pipeline's component time (the next bottleneck at a glance), cores (CPU seconds of the
process tree, user + system, over the component's seconds: below the machine's CPU count
means idle capacity), rows/s, peak MB, the ceiling's seconds and the ratio ceiling /
component (1 = as fast as the bare library; ExampleGen's target is >= 0.7, the evaluator's
>= 0.5). The evaluator's own split of its time (embedding, each scoring) is
printed under it.

    .venv/bin/python benchmarks/pipeline_scale.py [--sizes 20000,200000,1000000] [--workers]
        [--rerun]
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
WORKERS = re.compile(r"^Beam components on (\d+) worker processes")
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


def tree_cpu(process: psutil.Process, seen: dict[int, float]) -> float:
    """CPU seconds (user + system) the tree of ``process`` used since the last call.

    ``seen`` holds each live process's total at the last call (updated here); a process
    that ended between two calls loses at most its last interval's CPU time.
    """
    used = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total = times.user + times.system
        used += total - seen.get(p.pid, 0.0)
        seen[p.pid] = total
    return used


def run_measured(
    command: list[str], env: dict
) -> tuple[list[str], dict[str, float], dict[str, float], float]:
    """Runs ``command``; its output lines, per-component peaks and CPU, wall seconds.

    Per component (from its "started" line to its progress line): the peak RSS of the
    process tree (MB) and the CPU seconds the tree used (``tree_cpu``).
    """
    started = time.time()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    handle = psutil.Process(proc.pid)
    lines: list[str] = []
    current = ["(start)"]
    peaks: dict[str, float] = {}
    cpu: dict[str, float] = {}
    seen: dict[int, float] = {}

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            found = STARTED.match(lines[-1])
            if found:
                current[0] = found.group(1)
            elif PROGRESS.match(lines[-1]):
                current[0] = "(between)"

    reader = threading.Thread(target=read)
    reader.start()
    while proc.poll() is None:
        name = current[0]
        rss = tree_rss_mb(handle)
        peaks[name] = max(peaks.get(name, 0.0), rss)
        peaks["(all)"] = max(peaks.get("(all)", 0.0), rss)
        cpu[name] = cpu.get(name, 0.0) + tree_cpu(handle, seen)
        time.sleep(0.2)
    reader.join()
    if proc.returncode != 0:
        sys.exit("\n".join(lines[-40:]) + f"\nfailed: {' '.join(command)}")
    return lines, peaks, cpu, time.time() - started


def env_for_children() -> dict:
    """The current environment, with TensorFlow's legacy Keras and quiet C++ logs."""
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")


def pipeline_run(csv: str, root: str, epochs: int, beam_workers: int) -> dict:
    """The whole pipeline through the CLI in a fresh process; per-component figures.

    ``beam_workers`` is the CLI's ``--beam-workers`` (0: automatic); ``workers`` in the result
    is what the run used (1: in-process), read from its progress line.
    """
    command = [
        sys.executable, "-u", "-m", "tfx_metric_learning.pipeline.cli", "run",
        "--data", csv, "--pipeline-root", root, "--epochs", str(epochs),
        "--beam-workers", str(beam_workers),
    ]  # fmt: skip
    lines, peaks, cpu, wall = run_measured(command, env_for_children())
    seconds, states, workers = {}, {}, 1
    for line in lines:
        found = PROGRESS.match(line)
        if found:
            seconds[found.group(1)] = float(found.group(3))
            states[found.group(1)] = found.group(2)
        found = WORKERS.match(line)
        if found:
            workers = int(found.group(1))
    return {
        "seconds": seconds,
        "states": states,
        "peaks": peaks,
        "cpu": cpu,
        "wall": wall,
        "workers": workers,
    }


def ceiling_main(name: str, *args: str) -> None:
    """One ceiling of ``_ceilings`` (run in its own process): prints its figures as JSON."""
    import tfx_metric_learning  # noqa: F401  (sets TF_USE_LEGACY_KERAS)

    figures = getattr(_ceilings, name)(*args)
    print("FIGURES " + json.dumps(figures))


def child(*args: str) -> tuple[Any, float]:
    """Runs this file with ``args`` in a fresh process: (the FIGURES it printed, peak tree MB)."""
    command = [sys.executable, "-u", os.path.abspath(__file__), *args]
    lines, peaks, _, _ = run_measured(command, env_for_children())
    figures = [json.loads(line[len("FIGURES ") :]) for line in lines if line.startswith("FIGURES ")]
    return figures[-1], peaks["(all)"]


def measure_ceilings(csv: str, root: str, scratch: str, epochs: int, workers: int) -> dict:
    """Component id -> (ceiling seconds, what the ceiling is), each in a fresh process.

    The Beam ceilings run on ``workers`` worker processes (1: in-process), as the run did.
    """
    os.makedirs(scratch, exist_ok=True)
    w = str(workers)
    on = "" if workers == 1 else f", {workers} workers"
    found = {}
    seconds, _ = child("--child", "ceiling", "example_gen", csv, os.path.join(scratch, "eg"), w)
    found["FileBasedExampleGen"] = (seconds, f"bare tfx-bsl CSV decoder -> tf.Example{on}")
    seconds, _ = child("--child", "ceiling", "statistics", root, os.path.join(scratch, "st"), w)
    found["StatisticsGen"] = (seconds, f"bare TFDV GenerateStatistics, every split{on}")
    tft_out = os.path.join(scratch, "tft")
    seconds, _ = child("--child", "ceiling", "transform", root, tft_out, w, "tfx")
    once, _ = child("--child", "ceiling", "transform", root, tft_out + "-once", w, "once")
    found["Transform"] = (
        seconds,
        f"bare TFT, same preprocessing_fn, writing, train read twice as TFX's executor{on} "
        f"(one read: {once:.1f} s)",
    )
    (read, fitted), _ = child("--child", "ceiling", "fit", root, str(epochs))
    found["Trainer"] = (fitted, f"plain fit in memory (parsing into arrays {read:.1f} s)")
    queries = str(EvaluationSettings().max_eval_queries)
    (faiss_s, q, n, k), _ = child("--child", "ceiling", "knn", root, queries)
    (embed_s, rows), _ = child("--child", "ceiling", "embed", root)
    found["RetrievalEvaluator"] = (
        embed_s + faiss_s,
        f"embed {rows:,} eval rows with the SavedModel {embed_s:.1f} s + bare faiss k-NN "
        f"{faiss_s:.1f} s ({q:,} queries, k {k})",
    )
    found["(faiss)"] = (faiss_s, "")
    return found


def main() -> None:
    """Parses the options; runs the sizes (or, with ``--child``, one measured child)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000,1000000")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--workers",
        action="store_true",
        help="also run each size on the other worker setting (in-process vs 2+ workers)",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="then retrain on the same data and root (one more epoch): the cached input "
        "baselines and the production scores are read, not measured",
    )
    parser.add_argument("--work-dir", default="", help="kept when given (default: a temp dir)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ceiling_main(*args.child[1:])
        return

    work = args.work_dir or tempfile.mkdtemp(prefix="pipeline_scale-")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"pipeline_scale: {args.features} features, {args.classes} classes, --epochs "
        f"{args.epochs}, {os.cpu_count()} CPUs; sizes {', '.join(f'{n:,}' for n in sizes)}"
    )
    (blas, proto), _ = child("--child", "ceiling", "machine")
    print(
        f"machine today (_ceilings.machine): faiss k-NN 20,000 x 300,000 x 64 {blas:.1f} s, "
        f"300,000 tf.Examples built, serialised and parsed {proto:.1f} s"
    )
    for rows in sizes:
        folder = os.path.join(work, f"rows-{rows}")
        csv = os.path.join(folder, "data", "data.csv")
        if not os.path.exists(csv):
            write_csv(csv, rows, args.features, args.classes)
        root = os.path.join(folder, "root")
        shutil.rmtree(root, ignore_errors=True)
        run = pipeline_run(csv, root, args.epochs, 0)
        scratch = os.path.join(folder, "scratch")
        ceilings = measure_ceilings(csv, root, scratch, args.epochs, run["workers"])
        where = "in-process" if run["workers"] == 1 else f"{run['workers']} worker processes"
        print(
            f"\n{rows:,} rows ({os.path.getsize(csv) / 2**20:.0f} MB CSV); Beam components "
            f"{where} (automatic)"
        )
        total = sum(run["seconds"].values())
        print(
            f"  {'component':<30}{'seconds':>8}{'share':>7}{'cores':>6}{'rows/s':>11}{'peak MB':>9}"
            f"{'ceiling s':>11}{'ratio':>7}  ceiling"
        )
        for name, took in run["seconds"].items():
            rate = f"{rows / took:,.0f}" if took > 0 else "-"
            peak = run["peaks"].get(name)  # None: ended before the first 0.2 s poll
            peak_text = f"{peak:.0f}" if peak else "-"
            share = f"{100 * took / total:.0f}%"
            cores = f"{run['cpu'][name] / took:.1f}" if name in run["cpu"] and took >= 1 else "-"
            line = f"  {name:<30}{took:>8.1f}{share:>7}{cores:>6}{rate:>11}{peak_text:>9}"
            if name in ceilings:
                seconds, what = ceilings[name]
                line += f"{seconds:>11.1f}{seconds / took:>7.2f}  {what}"
            print(line)
        print(
            f"  {'pipeline (components)':<30}{total:>8.1f}{'100%':>7}"
            f"{sum(run['cpu'].values()) / run['wall']:>6.1f}{rows / total:>11,.0f}"
            f"{run['peaks']['(all)']:>9.0f}  process wall {run['wall']:.1f} s, "
            f"{1e6 * run['wall'] / rows:.0f} us/row"
        )
        faiss_s = ceilings["(faiss)"][0]
        evaluation = _ceilings.artifact(root, "RetrievalEvaluator", "evaluation")
        with open(os.path.join(evaluation, "evaluation.json")) as f:
            inside = json.load(f)["seconds"]
        print(
            "  evaluator inside: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in inside.items())
            + f"; bare faiss / score_candidate {faiss_s / inside['score_candidate']:.2f}"
        )
        if args.rerun:
            again = pipeline_run(csv, root, args.epochs + 1, 0)
            evaluation = _ceilings.artifact(root, "RetrievalEvaluator", "evaluation")
            with open(os.path.join(evaluation, "evaluation.json")) as f:
                record = json.load(f)
            ran = {k: v for k, v in again["seconds"].items() if again["states"][k] == "done"}
            cached = [k for k, state in again["states"].items() if state == "cached"]
            print(
                f"  retraining on the same data (--epochs {args.epochs + 1}, same root): "
                f"components {sum(again['seconds'].values()):.1f} s, process wall "
                f"{again['wall']:.1f} s; ran: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in ran.items())
                + f"; cached: {', '.join(cached)}"
            )
            production = (record["baseline_model"] or {}).get("scores_reused_from")
            print(
                "  its evaluator: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in record["seconds"].items())
                + f"; input baselines read from {record['baselines']['reused_from']}; "
                f"production scores: {production or 'measured (or no production)'}"
            )
        if args.workers:
            other = 2 if run["workers"] == 1 else 1
            other_root = os.path.join(folder, f"root-{other}")
            shutil.rmtree(other_root, ignore_errors=True)
            again = pipeline_run(csv, other_root, args.epochs, other)
            by = {run["workers"]: run, again["workers"]: again}
            n = max(by)
            print(f"  {'Beam components':<30}{'in-process':>11}{f'{n} workers':>11}  speed-up")
            for name, one in by[1]["seconds"].items():
                many = by[n]["seconds"].get(name, 0.0)
                ratio = f"{one / many:.2f}x" if many >= 0.5 else "-"
                print(f"  {name:<30}{one:>11.1f}{many:>11.1f}  {ratio}")
            totals = [sum(by[w]["seconds"].values()) for w in (1, n)]
            print(
                f"  {'pipeline (components)':<30}{totals[0]:>11.1f}{totals[1]:>11.1f}  "
                f"{totals[0] / totals[1]:.2f}x; peak MB {by[1]['peaks']['(all)']:.0f} vs "
                f"{by[n]['peaks']['(all)']:.0f}"
            )
            shutil.rmtree(other_root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
