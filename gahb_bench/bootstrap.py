"""Percentile bootstrap intervals of a statistic, resampling one or several axes of its data.

A statistic T is computed from a data array whose axes index independent draws: the replicates
of a store (training subsets S1, S2 and seeds), its test images, its samples. The percentile
bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, §13.3) draws B
resamples, each axis's indices with replacement and independently of the other axes,

    T*_b = T(data[I*_b,1, I*_b,2, …]),     I*_b,k ~ Uniform{0 … n_k − 1}^{n_k},

and reports the (1 − c)/2 and (1 + c)/2 quantiles of {T*_b} as the level-c interval. Resampling
an axis of images jointly across replicates (one index array for both) keeps the pairing of a
test image that the S1 and S2 models both denoised.

What such an interval covers is what was resampled: over the replicates, how much the score
moves with the training subsets and seeds; over the images or samples, how much it moves with
the test set. With two replicates, the percentile interval of a mean over them is their min–max
(the resampled means are a, (a+b)/2 and b with weights ¼, ½, ¼). A resample whose statistic is
not finite (a tie that leaves P* undefined) is dropped; when more than half are, there is no
interval.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

#: Resamples drawn per interval, and the interval's level.
N_BOOT, CONFIDENCE = 2000, 0.95


def percentile_interval(statistic: Callable[..., float], sizes: Sequence[int], n_boot: int = N_BOOT,
                        confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """(low, high): the percentile bootstrap interval of ``statistic(*indices)``, one index
    array per entry of ``sizes`` (an axis of n_k draws, resampled with replacement).

    NaN, NaN when an axis is empty or when fewer than half the resamples give a finite value.
    Deterministic for a given ``seed``.
    """
    if not sizes or min(sizes) < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=(n_boot, n)) for n in sizes]
    stats = np.array([statistic(*(d[b] for d in draws)) for b in range(n_boot)], dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size * 2 < n_boot:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_interval(values: np.ndarray, **kwargs) -> tuple[float, float]:
    """The interval of the mean of ``values`` (one per replicate), NaN values ignored."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return percentile_interval(lambda i: float(values[i].mean()), (values.size,), **kwargs)
