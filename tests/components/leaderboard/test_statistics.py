"""Leaderboard statistics against direct computations (textbook formulas, a printed t table)."""

import math

import numpy as np
import pytest

from tfx_metric_learning.components.leaderboard import statistics

# two-sided 95% Student t quantiles t_{0.975, df} from a printed table
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_mean_interval_is_the_t_interval_of_the_sample(df):
    values = list(np.random.default_rng(df).normal(0.6, 0.05, size=df + 1))
    mean, half = statistics.mean_interval(values)
    n = len(values)
    sd = math.sqrt(sum((v - sum(values) / n) ** 2 for v in values) / (n - 1))
    assert mean == pytest.approx(sum(values) / n)
    assert half == pytest.approx(T_TABLE[df] * sd / math.sqrt(n), rel=1e-3)


def test_one_value_has_no_interval_and_no_value_is_refused():
    assert statistics.mean_interval([0.7]) == (0.7, None)
    with pytest.raises(ValueError, match="no values"):
        statistics.mean_interval([])


def test_paired_test_is_the_t_test_of_the_differences_over_common_seeds():
    a = {0: 0.71, 1: 0.74, 2: 0.69, 3: 0.73, 7: 0.99}
    b = {0: 0.70, 1: 0.70, 2: 0.68, 3: 0.70, 9: 0.10}  # seeds 7 and 9 are not common
    result = statistics.paired_test(a, b)
    d = [a[s] - b[s] for s in (0, 1, 2, 3)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    # p from the t distribution's CDF with 3 degrees of freedom, in closed form
    x = t / math.sqrt(3)
    cdf_upper = 0.5 - (math.atan(x) + x / (1 + x * x)) / math.pi
    assert result["seeds"] == [0, 1, 2, 3]
    assert result["mean_difference"] == pytest.approx(mean)
    assert result["p_value"] == pytest.approx(2 * cdf_upper, rel=1e-6)
    assert result["significant"] == (result["p_value"] < statistics.ALPHA)


def test_paired_test_needs_two_pairs_and_handles_constant_differences():
    assert statistics.paired_test({0: 0.5}, {0: 0.4, 1: 0.3}) is None
    same = statistics.paired_test({0: 0.5, 1: 0.6}, {0: 0.4, 1: 0.5})
    assert same["p_value"] == 0.0 and same["significant"]
    equal = statistics.paired_test({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})
    assert equal["p_value"] == 1.0 and not equal["significant"]
