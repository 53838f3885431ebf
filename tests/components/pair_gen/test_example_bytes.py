import numpy as np
import tensorflow as tf

from tfx_metric_learning.components.pair_gen import example_bytes


def test_example_bytes_equal_deterministic_protobuf():
    rng = np.random.default_rng(0)
    rows = 50
    floats = rng.normal(size=(rows, 3, 40)).astype(np.float32)  # 480 bytes: 2-byte varints
    labels = [("x" * int(n)).encode() for n in rng.integers(1, 300, rows)]
    ints = rng.integers(-5, 2**40, rows).tolist()
    got = example_bytes.serialize(
        {"z_vec": ("float", floats), "label": ("bytes", labels), "id": ("int64", ints)}, rows
    )
    for i in range(rows):
        ex = tf.train.Example()
        f = ex.features.feature
        f["z_vec"].float_list.value.extend(floats[i].ravel())
        f["label"].bytes_list.value.append(labels[i])
        f["id"].int64_list.value.append(ints[i])
        assert got[i] == ex.SerializeToString(deterministic=True)
