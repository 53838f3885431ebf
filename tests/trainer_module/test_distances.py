import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.trainer_module import distances


def _numpy_pairwise(name, a, b):
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            diff = a[i] - b[j]
            if name == "squared_l2":
                out[i, j] = diff @ diff
            elif name == "l2":
                out[i, j] = np.sqrt(diff @ diff)
            else:
                out[i, j] = 1 - a[i] @ b[j] / (np.linalg.norm(a[i]) * np.linalg.norm(b[j]))
    return out


@pytest.mark.parametrize("name", ["l2", "squared_l2", "cosine"])
def test_pairwise_and_paired_match_explicit_loops(name):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4)).astype(np.float32)
    b = rng.normal(size=(3, 4)).astype(np.float32)
    d = distances.get_distance(name)
    np.testing.assert_allclose(d.pairwise(a, b).numpy(), _numpy_pairwise(name, a, b), atol=1e-5)
    np.testing.assert_allclose(
        d.paired(a[:3], b).numpy(), np.diag(_numpy_pairwise(name, a[:3], b)), atol=1e-5
    )


@pytest.mark.parametrize("name", ["l2", "squared_l2", "cosine"])
def test_gradient_is_finite_at_zero_distance(name):
    x = tf.Variable([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]])
    d = distances.get_distance(name)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(d.pairwise(x)) + tf.reduce_sum(d.paired(x, x))
    grad = tape.gradient(total, x)
    assert np.all(np.isfinite(grad.numpy()))


def test_unknown_distance_lists_valid_names():
    with pytest.raises(ValueError, match="cosine, l2, squared_l2"):
        distances.get_distance("manhattan")
