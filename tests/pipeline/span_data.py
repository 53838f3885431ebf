"""Daily spans of the bundled digits, for the scheduled-retraining tests and the README."""

from __future__ import annotations

import os

from tfx_metric_learning.pipeline.data import digits_csv_text

PATTERN = "span-{SPAN}/*.csv"
# rows of the digits (1,797) each day brings: day 2 brings more than day 1
DAY_ROWS = ((0, 420), (420, 1000), (1000, 1400), (1400, 1797))
# a feature recorded in other units on the drifted day (x4): a pixel that is rarely zero
DRIFTED = ("pixel_1_3",)
SCALE = 4.0


def write_span(data_dir: str, day: int, drift: bool = False) -> str:
    """Writes day ``day`` (1-based) as ``data_dir/span-<day>/digits.csv``; returns its path."""
    lines = digits_csv_text().splitlines()
    header, rows = lines[0], lines[1:]
    start, end = DAY_ROWS[day - 1]
    names = header.split(",")
    out = [header]
    for row in rows[start:end]:
        values = row.split(",")
        if drift:
            for name in DRIFTED:
                i = names.index(name)
                values[i] = f"{float(values[i]) * SCALE:g}"
        out.append(",".join(values))
    path = os.path.join(data_dir, f"span-{day}", "digits.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path
