"""Benchmark: the whole pipeline on wide data, and where its time goes, against TFT alone.

Synthetic data (default 500 rows x 2,000 numeric features, 10 classes) as a CSV. In the same
run, each in a fresh process:

- the pipeline: ``metric-learning run`` (all ten components), its seconds per component and
  peak memory;
- the baseline for Transform: TFT's ``AnalyzeAndTransformDataset`` alone, with the pipeline's
  own ``preprocessing_fn`` on the same rows read from ExampleGen's output through TFXIO (what
  TFX's Transform does inside: analysed on train, every split transformed), and the transform
  graph written (``_ceilings.transform``).

It prints the component times and the ratio Transform / bare TFT: a ratio near 1 says the
time is TFT's own cost for this many raw features (tracing, fingerprinting and saving a
graph with one input per feature), not this project's code.

    .venv/bin/python benchmarks/wide_data.py [--rows 500] [--features 2000] [--epochs 5]
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
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
from _memory import peak_rss_mb  # noqa: E402

PROGRESS = re.compile(r"^\[\d+/\d+\] (\S+) (done|cached|skipped) \(([\d.]+) s\)$")


def write_csv(path: str, rows: int, features: int, classes: int, seed: int = 0) -> None:
    """Rows of ``features`` normal values; the first 10 shifted by the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=rows)
    x = rng.normal(size=(rows, features))
    x[:, : min(10, features)] += labels[:, None]
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(features)] + ["label"]) + "\n")
        for row, label in zip(x, labels, strict=True):
            f.write(",".join(f"{v:.4f}" for v in row) + f",{label}\n")


def bare_tft(root: str, out_dir: str) -> None:
    """TFT alone on the run's ExampleGen output (``_ceilings.transform``); prints JSON."""
    import _ceilings

    seconds = _ceilings.transform(root, out_dir)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb()}))


def main() -> None:
    """Runs both in fresh processes and prints the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--features", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--bare-tft", nargs=2, metavar=("ROOT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_tft:
        bare_tft(*args.bare_tft)
        return
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = os.path.join(tmp, "wide.csv")
        write_csv(csv_path, args.rows, args.features, args.classes)
        summary = os.path.join(tmp, "summary.json")
        cmd = [sys.executable, "-m", "tfx_metric_learning.pipeline.cli", "run", "--data", csv_path]
        cmd += ["--pipeline-root", os.path.join(tmp, "root"), "--epochs", str(args.epochs)]
        cmd += ["--summary-json", summary, "--batch-size", "64"]
        started = time.time()
        timer = ["/usr/bin/time", "-f", "PEAK_KB %M"] if shutil.which("/usr/bin/time") else []
        proc = subprocess.run(
            [*timer, *cmd],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.time() - started
        if proc.returncode:
            sys.exit(f"the pipeline failed:\n{proc.stdout}\n{proc.stderr}")
        times = {
            m.group(1): float(m.group(3))
            for m in map(PROGRESS.match, proc.stdout.splitlines())
            if m
        }
        peak = re.search(r"PEAK_KB (\d+)", proc.stderr)
        bare = subprocess.run(
            [sys.executable, __file__, "--bare-tft", os.path.join(tmp, "root"), tmp],
            capture_output=True,
            text=True,
            env=env,
        )
        if bare.returncode:
            sys.exit(f"bare TFT failed:\n{bare.stderr}")
        tft = json.loads(bare.stdout.strip().splitlines()[-1])
    print(f"wide data: {args.rows} rows x {args.features} features, {args.classes} classes")
    print(
        f"  pipeline (metric-learning run)   {wall:7.1f} s wall, peak RSS "
        f"{int(peak.group(1)) / 1024 if peak else float('nan'):.0f} MB"
    )
    for name, seconds in times.items():
        print(f"    {name:<32} {seconds:7.1f} s")
    print(
        f"  bare TFT on the same examples    {tft['seconds']:7.1f} s, peak RSS "
        f"{tft['peak_mb']:.0f} MB"
    )
    transform = times.get("Transform", float("nan"))
    print(f"  ratio Transform / bare TFT       {transform / tft['seconds']:.2f}")


if __name__ == "__main__":
    main()
