"""Daily spans of the bundled digits: the scheduled-retraining tests' and the docs' data."""

from __future__ import annotations

import os

from tfx_metric_learning.pipeline.data import digits_csv_text

PATTERN = "span-{SPAN}/*.csv"
# rows of the digits (1,797) each day brings: day 2 brings more than day 1
DAY_ROWS = ((0, 420), (420, 1000), (1000, 1400), (1400, 1797), (1400, 1797))
# a feature recorded in other units on the drifted day (x4): a pixel that is rarely zero
DRIFTED = ("pixel_1_3",)
SCALE = 4.0
# a dense pixel whose value is left empty in the first ``empty_cells`` rows of a span
EMPTY_CELL_FEATURE = "pixel_2_3"
# the column a span may gain (a change of the source's schema)
NEW_COLUMN = "sensor_b"


def write_span(
    data_dir: str, day: int, drift: bool = False, empty_cells: int = 0, new_column: bool = False
) -> str:
    """Writes day ``day`` (1-based) as ``data_dir/span-<day>/digits.csv``; returns its path.

    ``drift``: ``DRIFTED`` recorded x ``SCALE``; ``empty_cells``: ``EMPTY_CELL_FEATURE`` left
    empty in that many rows; ``new_column``: a last column ``NEW_COLUMN`` (the row's number).
    """
    lines = digits_csv_text().splitlines()
    header, rows = lines[0], lines[1:]
    start, end = DAY_ROWS[day - 1]
    names = header.split(",")
    out = [header + (f",{NEW_COLUMN}" if new_column else "")]
    for number, row in enumerate(rows[start:end]):
        values = row.split(",")
        if drift:
            for name in DRIFTED:
                i = names.index(name)
                values[i] = f"{float(values[i]) * SCALE:g}"
        if number < empty_cells:
            values[names.index(EMPTY_CELL_FEATURE)] = ""
        if new_column:
            values.append(str(number))
        out.append(",".join(values))
    path = os.path.join(data_dir, f"span-{day}", "digits.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path
