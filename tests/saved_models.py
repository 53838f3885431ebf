"""Comparing SavedModels by their weights: what a pushed model must keep of the trained one."""

import os

import numpy as np
import tensorflow as tf

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def assert_same_weights(trained_dir: str, pushed_dir: str) -> int:
    """Every weight of ``trained_dir``'s SavedModel is in ``pushed_dir``'s under the same
    checkpoint key (what warm start reads) with the same value; the number compared."""
    trained = tf.train.load_checkpoint(os.path.join(trained_dir, "variables", "variables"))
    pushed = tf.train.load_checkpoint(os.path.join(pushed_dir, "variables", "variables"))
    keys = set(trained.get_variable_to_shape_map()) - {OBJECT_GRAPH}
    missing = keys - set(pushed.get_variable_to_shape_map())
    assert not missing, f"{pushed_dir} lacks weights {sorted(missing)[:5]}"
    for key in sorted(keys):
        assert np.array_equal(trained.get_tensor(key), pushed.get_tensor(key)), key
    assert any(k.startswith("layer_with_weights-") for k in keys), sorted(keys)[:5]
    return len(keys)
