"""Statistics over seeds: mean with a 95% Student-t interval, and paired tests between candidates.

Each candidate is trained once per seed; seed ``s`` of every candidate uses the same data
sampling seed and initialisation seed, so results are paired by seed.

- ``mean_interval(x)``: the mean of ``n`` values and the half-width of its two-sided 95%
  confidence interval, ``t_{0.975, n-1} * s / sqrt(n)`` with ``s`` the sample standard
  deviation (``ddof = 1``). With one value there is no interval (``None``).
- ``paired_test(a, b)``: the paired t-test of ``mean(a - b) = 0`` over the seeds both have
  (``scipy.stats.ttest_rel``, two-sided); ``None`` with fewer than two pairs. When every
  difference is the same number the test is degenerate: ``p = 0`` if that number is not 0
  (the difference is certain over these seeds), ``p = 1`` if it is.

Pure functions on plain lists; scipy does the distributions (no hand-written quantiles).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
# a difference is called significant below this p-value (two-sided, paired over seeds)
ALPHA = 0.05


def mean_interval(values: list[float]) -> tuple[float, float | None]:
    """``(mean, half-width of the 95% t interval)``; the half-width is None for one value."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to average")
    mean = float(x.mean())
    if x.size < 2:
        return mean, None
    t = stats.t.ppf(0.5 + CONFIDENCE / 2, df=x.size - 1)
    return mean, float(t * x.std(ddof=1) / math.sqrt(x.size))


def paired_test(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """The paired t-test of ``a`` against ``b`` (values by seed) over their common seeds.

    Returns ``{"seeds", "mean_difference", "p_value", "significant"}`` (``a - b``), or None
    when fewer than two seeds are common.
    """
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    x = np.array([a[s] for s in seeds], dtype=np.float64)
    y = np.array([b[s] for s in seeds], dtype=np.float64)
    diff = x - y
    if np.allclose(diff, diff[0], rtol=0.0, atol=1e-12):
        p = 1.0 if abs(diff[0]) <= 1e-12 else 0.0
    else:
        p = float(stats.ttest_rel(x, y).pvalue)
    return {
        "seeds": seeds,
        "mean_difference": float(diff.mean()),
        "p_value": p,
        "significant": p < ALPHA,
    }
