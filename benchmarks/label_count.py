"""Benchmark: the preflight's count of a CSV's labels, pyarrow's reader vs Python's ``csv``.

``layout.count_labels`` counts a plain UTF-8 CSV's labels with pyarrow's streaming CSV
reader (``_arrow_label_counts``) and any other file with Python's ``csv`` module. On one
synthetic CSV (``pipeline_scale.write_csv``: ``--rows`` rows of 64 features and 200
classes; written once into ``--work-dir``, kept), both ways, alternating, twice each; prints
the seconds, the ratio of the medians and whether the counts are the same.

    .venv/bin/python benchmarks/label_count.py [--rows 1000000] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pipeline_scale  # noqa: E402

from tfx_metric_learning.components.example_gen import layout  # noqa: E402
from tfx_metric_learning.components.example_gen.settings import IngestSettings  # noqa: E402


def main() -> None:
    """Prints both ways' seconds, their ratio and whether the counts agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work-dir", default="")
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="label-count-")
    path = os.path.join(work, f"labels-{args.rows}.csv")
    if not os.path.exists(path):
        pipeline_scale.write_csv(path, args.rows, 64, 200)
    settings = IngestSettings()
    found = layout.read_layout([path], settings)
    arrow = layout._arrow_label_counts
    seconds, counts = {"csv": [], "pyarrow": []}, {}
    for way in ["csv", "pyarrow", "csv", "pyarrow"]:
        layout._arrow_label_counts = arrow if way == "pyarrow" else (lambda *args: None)
        started = time.perf_counter()
        counts[way] = layout.count_labels(found, settings)
        seconds[way].append(time.perf_counter() - started)
    layout._arrow_label_counts = arrow
    slow, fast = statistics.median(seconds["csv"]), statistics.median(seconds["pyarrow"])
    print(
        f"{args.rows:,} rows ({os.path.getsize(path) / 1e6:.0f} MB): csv "
        f"{', '.join(f'{s:.2f}' for s in seconds['csv'])} s, pyarrow "
        f"{', '.join(f'{s:.2f}' for s in seconds['pyarrow'])} s, ratio {slow / fast:.2f}x; "
        f"same counts: {counts['csv'] == counts['pyarrow']} "
        f"({sum(counts['csv'].values()):,} rows, {len(counts['csv'])} labels)"
    )


if __name__ == "__main__":
    main()
