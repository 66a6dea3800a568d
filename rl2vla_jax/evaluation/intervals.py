"""95% confidence intervals for the results table.

Success rates are proportions of independent episodes: the Wilson score interval
    centre = (p + z^2 / 2n) / (1 + z^2 / n),   half = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)
(keeps inside [0, 1] and stays informative at 0 or n successes, where the Wald interval
collapses). Returns: mean +- t_{0.975, n-1} s / sqrt(n). The difference of two success rates:
Newcombe's hybrid score interval (his method 10) from the two Wilson intervals,
    d - sqrt((p1 - l1)^2 + (u2 - p2)^2),   d + sqrt((u1 - p1)^2 + (p2 - l2)^2),   d = p1 - p2.
The difference when both policies played the same episodes (paired 0/1 outcomes): Agresti and
Min's (2005) adjusted Wald interval, 1/2 added to each cell of the 2x2 table (b, c: the
discordant counts, n the pairs), d* = (b - c) / (n + 2),
    d* +- z sqrt(((b + c) / (n + 2) - d*^2) / (n + 2)),
far narrower than Newcombe's when the two policies mostly succeed and fail on the same episodes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; the float sum leaves ~1e-17 instead.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def mean_interval(values) -> tuple[float, float]:
    """Student-t interval of the mean; (mean, mean) for a single value."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean()) if values.size else math.nan
    if values.size < 2:
        return (mean, mean)
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return (mean - half, mean + half)


def difference_interval(successes1: float, n1: int, successes2: float, n2: int) -> tuple[float, float]:
    """Newcombe's interval for p1 - p2 (independent samples)."""
    p1, p2 = successes1 / n1, successes2 / n2
    l1, u1 = wilson_interval(successes1, n1)
    l2, u2 = wilson_interval(successes2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def paired_difference_interval(x, y, z: float = Z95) -> tuple[float, float]:
    """Agresti-Min interval for mean(x) - mean(y), x[i] and y[i] 0/1 outcomes of the same episode."""
    x, y = np.asarray(x, bool), np.asarray(y, bool)
    if x.shape != y.shape:
        raise ValueError(f"paired outcomes need equal shapes, got {x.shape} and {y.shape}")
    if x.size == 0:
        return (math.nan, math.nan)
    m = x.size + 2
    b, c = np.sum(x & ~y) + 0.5, np.sum(~x & y) + 0.5
    d = (b - c) / m
    half = z * math.sqrt(((b + c) / m - d * d) / m)
    return (max(-1.0, d - half), min(1.0, d + half))
