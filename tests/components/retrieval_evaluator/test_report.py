import os
import struct

import numpy as np

from tfx_metric_learning.components.retrieval_evaluator import report, scoring


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    return struct.unpack(">II", header[16:24])


def test_the_per_class_chart_keeps_the_worst_classes_when_there_are_many():
    per_class = {f"c{i:03d}": {"map_at_r": (i * 37 % 100) / 100} for i in range(100)}
    classes, title = report.chart_classes(per_class, "candidate")
    assert len(classes) == report.PER_CLASS_MAX == 40 and classes == sorted(classes)
    worst = max(per_class[c]["map_at_r"] for c in classes)
    assert all(per_class[c]["map_at_r"] >= worst for c in set(per_class) - set(classes))
    assert "40 worst of 100 classes" in title
    few = dict(list(per_class.items())[:5])
    assert report.chart_classes(few, "candidate") == (sorted(few), "MAP@R per class")


def test_a_report_of_many_classes_stays_small(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([f"class {i}" for i in range(100)], 3)
    emb = rng.normal(size=(len(labels), 8)).astype(np.float32)
    results = {"candidate": scoring.score((emb, labels), None, [1, 5])}
    path, errors = report.write_report(
        str(tmp_path), results, emb, labels, ["map_at_r"], {"blessed": False, "reasons": []}
    )
    assert errors == [] and os.path.exists(path)
    width, _ = png_size(str(tmp_path / "map_at_r_per_class.png"))
    assert width < 0.45 * 100 * 100  # the chart of 100 classes would be 45 inches at 100 dpi
