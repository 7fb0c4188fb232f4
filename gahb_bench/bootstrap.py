"""Intervals of a statistic: the percentile bootstrap over one or several axes of its data, and the
exact binomial interval of a fraction where no resample can move it.

A statistic T is computed from a data array whose axes index independent draws: the replicates
of a store (training subsets S1, S2 and seeds), its test images, its samples. The percentile
bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, §13.3) draws B
resamples, each axis's indices with replacement and independently of the other axes,

    T*_b = T(data[I*_b,1, I*_b,2, …]),     I*_b,k ~ Uniform{0 … n_k − 1}^{n_k},

and reports the (1 − c)/2 and (1 + c)/2 quantiles of {T*_b} as the level-c interval. Resampling
an axis of images jointly across replicates (one index array for both) keeps the pairing of a
clean test image that the S1 and S2 models both denoised (each with its own noise). With two
replicates the replicate part of such an interval is a two-run spread, and the interval covers
less than 95% when the replicates vary more than the images (``benchmarks/interval_coverage.py``,
a mean of 2 × 16 additive effects: 59% when the replicate spread dominates, 90% when the image
spread does, 94–96% otherwise); resampling both axes of a crossed design also counts their interaction twice
(McCullagh 2000, "Resampling and exchangeable arrays", Bernoulli 6).

What such an interval covers is what was resampled: over the replicates, how much the score
moves with the training subsets and seeds; over the images or samples, how much it moves with
the test set. With two replicates, the percentile interval of a mean over them is their min–max
(the resampled means are a, (a+b)/2 and b with weights ¼, ½, ¼). A resample whose statistic is
not finite (a tie that leaves P* undefined) is dropped; when more than half are, there is no
interval. An interval of two draws covers the mean they estimate only half the time
(P(min < μ < max) = ½ for two independent draws), so the scorecard calls it a range.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

#: Resamples drawn per interval, and the interval's level.
N_BOOT, CONFIDENCE = 2000, 0.95


def resample(statistic: Callable[..., float], sizes: Sequence[int], n_boot: int = N_BOOT,
             seed: int = 0) -> np.ndarray:
    """The ``n_boot`` resampled values T*_b of ``statistic(*indices)``, one index array per entry
    of ``sizes`` (an axis of n_k draws, resampled with replacement), NaN kept. Empty when an
    axis is empty. Deterministic for a given ``seed``."""
    if not sizes or min(sizes) < 1:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=(n_boot, n)) for n in sizes]
    return np.array([statistic(*(d[b] for d in draws)) for b in range(n_boot)], dtype=np.float64)


def percentile_interval(statistic: Callable[..., float], sizes: Sequence[int], n_boot: int = N_BOOT,
                        confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """(low, high): the percentile bootstrap interval of ``statistic`` (see :func:`resample`).

    NaN, NaN when an axis is empty or when fewer than half the resamples give a finite value.
    """
    return interval_of(resample(statistic, sizes, n_boot, seed), confidence)


def interval_of(stats: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of resampled values ``stats``, the non-finite ones dropped; NaN,
    NaN when fewer than half of them are finite."""
    finite = stats[np.isfinite(stats)]
    if not stats.size or finite.size * 2 < stats.size:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper–Pearson) binomial interval of a fraction k/n,

        low = B⁻¹((1 − c)/2; k, n − k + 1),   high = B⁻¹((1 + c)/2; k + 1, n − k),

    B⁻¹ the beta quantile (at k = 0, low = 0 and high = 1 − ((1 − c)/2)^(1/n); at k = n, high = 1
    and low = ((1 − c)/2)^(1/n)).
    Where a bootstrap cannot move (no sample, or every sample, is a copy, so every resample
    gives 0 or 1), this says how far the fraction could be from it."""
    from scipy.stats import beta

    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def mean_interval(values: np.ndarray, **kwargs) -> tuple[float, float]:
    """The interval of the mean of ``values`` (one per replicate), NaN values ignored."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return percentile_interval(lambda i: float(values[i].mean()), (values.size,), **kwargs)
