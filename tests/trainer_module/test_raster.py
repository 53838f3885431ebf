"""Raster layouts read from feature names: images found, everything else refused."""

import numpy as np

from tfx_metric_learning.trainer_module.raster import raster_layout


def test_one_index_names_of_a_square_count_are_a_square_image_in_row_major_order():
    names = sorted(f"px_{i}" for i in range(576))  # px_0, px_1, px_10, px_100, ...
    raster = raster_layout(names)
    assert (raster.height, raster.width, raster.side) == (24, 24, 24)
    assert [names[i] for i in raster.order[:3]] == ["px_0", "px_1", "px_2"]
    assert names[raster.order[575]] == "px_575"


def test_row_and_column_indexes_give_a_rectangle():
    names = sorted(f"pixel_{r}_{c}" for r in range(4) for c in range(6))
    raster = raster_layout(names)
    assert (raster.height, raster.width) == (4, 6)
    assert [names[i] for i in raster.order[:2]] == ["pixel_0_0", "pixel_0_1"]
    assert names[raster.order[6]] == "pixel_1_0"
    assert sorted(raster.order) == list(range(24))


def test_anything_else_is_not_an_image():
    assert raster_layout([f"px_{i}" for i in range(575)]) is None  # not a square
    assert raster_layout([f"px_{i}" for i in range(1, 65)]) is None  # not from 0
    assert raster_layout([*(f"px_{i}" for i in range(63)), "py_63"]) is None  # two prefixes
    assert raster_layout(["height", "weight", "age", "size"]) is None
    assert (
        raster_layout([f"p_{r}_{c}" for r in range(3) for c in range(3) if (r, c) != (1, 1)])
        is None
    )
    assert raster_layout(["px_0"]) is None  # too few to be an image
    two = [f"p_{r}_{c}" for r in range(3) for c in range(3)]
    assert raster_layout(two[:-1]) is None  # a cell missing
    assert np.array_equal(raster_layout(two).order, range(9))
