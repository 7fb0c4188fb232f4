"""Percentile bootstrap intervals: known values and the normal approximation."""

import numpy as np
import pytest

from gahb_bench.bootstrap import clopper_pearson, mean_interval, percentile_interval


def test_the_interval_of_a_mean_of_two_replicates_is_their_min_max():
    assert mean_interval(np.array([3.0, 5.0])) == (3.0, 5.0)
    assert mean_interval(np.array([3.0, np.nan, 5.0])) == (3.0, 5.0)  # NaN replicates left out


def test_the_interval_of_a_mean_matches_the_normal_approximation():
    values = np.random.default_rng(1).standard_normal(400)
    low, high = mean_interval(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert low < values.mean() < high


def test_each_axis_is_resampled_on_its_own_and_the_seed_fixes_the_draws():
    data = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # replicates differ, images within them do not

    def stat(r, i):
        return float(data[np.ix_(r, i)].mean())

    assert percentile_interval(stat, data.shape) == (0.0, 1.0)
    assert percentile_interval(stat, data.shape, seed=3) == percentile_interval(stat, data.shape, seed=3)
    lengths = set()
    percentile_interval(lambda r, i: lengths.add((r.size, i.size)) or 0.0, (2, 3), n_boot=50)
    assert lengths == {(2, 3)}  # one index array per axis, each of its axis's length


def test_mostly_undefined_resamples_or_an_empty_axis_give_no_interval():
    assert np.isnan(percentile_interval(lambda i: np.nan if i[0] else 1.0, (2,), n_boot=200)).all()
    assert np.isnan(percentile_interval(lambda i: 1.0, (0,))).all()


def test_the_exact_binomial_interval_matches_scipys_clopper_pearson():
    from scipy.stats import binomtest

    for k, n in ((0, 64), (3, 64), (64, 64), (10, 20)):
        expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((expected.low, expected.high))
    assert clopper_pearson(0, 64)[1] == pytest.approx(1 - 0.025 ** (1 / 64))
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)
