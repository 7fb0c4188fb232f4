"""One agreement statistic between two denoisers on the same noisy images.

For a denoiser f (the network) and a reference g on a noisy image y, the centred r²

    r²(y) = 1 − ‖f(y) − g(y)‖² / ‖f(y) − mean(f(y))‖²,

where mean(f(y)) is the mean pixel of f(y): the fraction of the variation of the network's
output image that the reference reproduces. 1 when g = f; 0 when g is no closer to f(y) than the
flat image at f(y)'s mean; negative when farther. It is invariant to a common scaling of both
outputs, and it is not symmetric (the network's output sets the scale). Over a set of test
images it is summarized by its median and interquartile range (robust to the few flat images
whose denominator is tiny).

At small σ a denoiser's output is close to its input, so :func:`residual_r2` asks the same
question of the residuals f(y) − y and g(y) − y: how much of what the network removes the
reference removes too.
"""

from __future__ import annotations

import warnings

import numpy as np


def centred_r2(output, reference) -> np.ndarray:
    """r² of ``reference`` as a prediction of ``output``, per image: (B,) from two (B, …)
    arrays. An image whose output is flat (zero variance) gets NaN."""
    f = np.asarray(output, np.float64).reshape(len(output), -1)
    g = np.asarray(reference, np.float64).reshape(len(reference), -1)
    if f.shape != g.shape:
        raise ValueError(f"output and reference must have the same shape, got {f.shape} and {g.shape}")
    spread = np.sum((f - f.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, 1.0 - np.sum((f - g) ** 2, axis=1) / spread, np.nan)


def residual_r2(output, reference, noisy) -> np.ndarray:
    """r² of what ``reference`` removes from ``noisy`` as a prediction of what ``output`` removes,
    per image:

        r²_res(y) = 1 − ‖f(y) − g(y)‖² / ‖(f(y) − y) − mean(f(y) − y)‖².

    The same numerator as :func:`centred_r2`, against the spread of the network's residual
    f(y) − y instead of its output: at small σ, where every denoiser is close to y and the
    centred r² of any of them (y itself included) is close to 1, this one still separates them.
    0 for a reference that removes nothing (g = y, up to the residual's mean)."""
    y = np.asarray(noisy, np.float64)
    return centred_r2(np.asarray(output, np.float64) - y, np.asarray(reference, np.float64) - y)


def median_iqr(values, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Median and interquartile range (q75 − q25) along ``axis``, ignoring NaN (NaN where all are)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer
        q25, q50, q75 = np.nanpercentile(np.asarray(values, np.float64), [25, 50, 75], axis=axis)
    return q50, q75 - q25
