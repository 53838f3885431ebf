"""Benchmark: retrieval among classes never trained on, against the raw and classic baselines.

Runs the default pipeline (``metric-learning run --protocol unseen_classes``, nothing else
set) on a many-class data file once per seed, each in a fresh folder and process, and prints
per seed the test MAP@R of the pushed candidate beside the baselines the same evaluation
scored on the same eval split: the inputs (``raw_features``, ``transformed_features``,
cosine) and the classic linear methods fit on the train split (``pca_whitened``, ``lda``:
``components/retrieval_evaluator/classic.py``). Then the mean over seeds with its 95%
t-interval and the ratio of the candidate's mean to the best classic baseline's (the
issue's target: at least 2).

    .venv/bin/python benchmarks/unseen_classes.py [--data ../shared/data/hangul400_24.csv.gz]
        [--seeds 1,2,3] [-- extra run flags]

The default data is the shared Hangul glyph set (400 classes; the upper 200 held out).
``--data glyphs`` draws other data the defaults were not tuned on: about 300 characters of
alphabetic scripts in the fonts installed here, 28 x 28 (``_glyphs.py``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _glyphs import write_glyphs
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "hangul400_24.csv.gz")
METRIC = "map_at_r"


def run_once(data: str, seed: int, work: str, extra: list[str]) -> dict:
    """One default run in ``work``; its summary (``--summary-json``) and wall seconds."""
    summary = os.path.join(work, "summary.json")
    command = [
        os.path.join(os.path.dirname(sys.executable), "metric-learning"),
        "run",
        "--data", data,
        "--protocol", "unseen_classes",
        "--seed", str(seed),
        "--pipeline-root", os.path.join(work, "root"),
        "--metadata-path", os.path.join(work, "metadata.db"),
        "--serving-dir", os.path.join(work, "serving"),
        "--summary-json", summary,
        *extra,
    ]  # fmt: skip
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        logs = sorted(glob.glob(os.path.join(work, "logs", "*.log")))
        tail = open(logs[-1]).read()[-4000:] if logs else ""
        sys.exit(f"seed {seed}: the run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{tail}")
    with open(summary) as f:
        found = json.load(f)
    found["wall"] = time.time() - started
    return found


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def main() -> None:
    """Runs every seed, then prints the table, the means and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("extra", nargs="*", help="more run flags, after --")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = {}
    if args.data == "glyphs":
        args.data = os.path.join(tempfile.mkdtemp(prefix="glyphs-"), "glyphs.csv.gz")
        print("glyphs:", write_glyphs(args.data))
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="unseen-") as work:
            rows[seed] = run_once(os.path.abspath(args.data), seed, work, args.extra)
    names = ["candidate", "raw_features", "transformed_features", "pca_whitened", "lda"]
    print(f"{'seed':>4}  " + "  ".join(f"{n:>20}" for n in names) + "   wall s")
    table = {n: [] for n in names}
    for seed, found in rows.items():
        values = {"candidate": found["metrics"][METRIC]}
        values |= {n: v[METRIC] for n, v in (found.get("raw_baselines") or {}).items()}
        values |= {n: v[METRIC] for n, v in (found.get("classic_baselines") or {}).items()}
        for n in names:
            table[n].append(values.get(n, float("nan")))
        cells = "  ".join(f"{values.get(n, float('nan')):>20.4f}" for n in names)
        print(f"{seed:>4}  {cells}   {found['wall']:.0f}")
    means = {n: interval(v) for n, v in table.items()}
    print("mean  " + "  ".join(f"{m:>12.4f} +-{h:.4f}" for m, h in means.values()))
    best = max(("pca_whitened", "lda"), key=lambda n: means[n][0])
    ratio = means["candidate"][0] / means[best][0]
    low = (means["candidate"][0] - means["candidate"][1]) / means[best][0]
    print(
        f"{METRIC}: candidate / best classic baseline ({best}) = {ratio:.2f} "
        f"(lower end of the candidate's 95% interval: {low:.2f}); target >= 2"
    )


if __name__ == "__main__":
    main()
