"""The 95% intervals against cases worked by hand, published values and scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from rl2vla_jax.evaluation import intervals


def test_wilson_hand_cases():
    # 0 of 10: [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415].
    low, high = intervals.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)
    assert high == pytest.approx(0.2775, abs=1e-4)
    # 5 of 10: centre 0.5, half = z sqrt(0.025 + z^2/400) / (1 + z^2/10) = 0.2634.
    low, high = intervals.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert all(math.isnan(v) for v in intervals.wilson_interval(3, 0))  # no episodes, no interval


@pytest.mark.parametrize("n", [10, 16, 48, 240])
def test_wilson_bounds_are_exact_at_none_and_all(n):
    # The float sum centre - half leaves e.g. 6.9e-18 at 0 of 48; tables print the bound as is.
    assert intervals.wilson_interval(0, n)[0] == 0.0
    assert intervals.wilson_interval(n, n)[1] == 1.0


@pytest.mark.parametrize("k,n", [(0, 7), (1, 13), (7, 17), (29, 29), (11, 64)])
def test_wilson_matches_scipy(k, n):
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert intervals.wilson_interval(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_mean_interval_hand_case():
    # [1, 2, 3]: mean 2, s = 1, t_{0.975, 2} = 4.302653 -> half width 4.302653 / sqrt(3) = 2.48414.
    low, high = intervals.mean_interval([1.0, 3.0, 2.0])
    assert (low, high) == pytest.approx((2 - 2.48414, 2 + 2.48414), abs=1e-5)
    assert intervals.mean_interval([0.7]) == (0.7, 0.7)


def test_newcombe_difference_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, method 10, example (a): 56/70 vs 48/80.
    low, high = intervals.difference_interval(56, 70, 48, 80)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # Symmetry: swapping the samples mirrors the interval.
    swapped = intervals.difference_interval(48, 80, 56, 70)
    np.testing.assert_allclose(swapped, (-high, -low), atol=1e-12)
    assert not math.isnan(intervals.difference_interval(0, 5, 0, 5)[0])


def test_paired_difference_hand_case():
    # 100 episodes, x alone succeeds on 12, y alone on 4: b = 12.5, c = 4.5, n + 2 = 102,
    # d* = 8 / 102 = 0.0784314, (b + c) / 102 = 0.1666667, variance (0.1666667 - 0.0061515) / 102
    # = 0.00157368, half width 1.959964 * 0.0396697 = 0.0777512.
    x = np.array([1] * 12 + [0] * 4 + [1] * 40 + [0] * 44)
    y = np.array([0] * 12 + [1] * 4 + [1] * 40 + [0] * 44)
    low, high = intervals.paired_difference_interval(x, y)
    assert (low, high) == pytest.approx((0.0784314 - 0.0777512, 0.0784314 + 0.0777512), abs=1e-6)
    # Swapping the policies mirrors it; concordant episodes only narrow it.
    np.testing.assert_allclose(intervals.paired_difference_interval(y, x), (-high, -low), atol=1e-12)
    assert high - low < np.subtract(*intervals.difference_interval(52, 100, 44, 100)[::-1])
    assert math.isnan(intervals.paired_difference_interval([], [])[0])
    with pytest.raises(ValueError, match="equal shapes"):
        intervals.paired_difference_interval([1, 0], [1])


def test_paired_difference_covers_the_true_difference():
    # Two correlated policies, success 0.50 and 0.42 on 100 shared episodes (true difference
    # 0.08): the 95% interval should contain it in about 95% of 4000 simulated evaluations.
    rng = np.random.default_rng(0)
    cells = rng.choice(4, size=(4000, 100), p=[0.30, 0.20, 0.12, 0.38])  # (1,1) (1,0) (0,1) (0,0)
    x, y = (cells == 0) | (cells == 1), (cells == 0) | (cells == 2)
    covered = [low <= 0.08 <= high for low, high in map(intervals.paired_difference_interval, x, y)]
    assert 0.93 <= np.mean(covered) <= 0.97
