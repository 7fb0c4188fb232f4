"""The trivial denoiser ``image-mean``: every pixel replaced by the mean of its noisy image.

f(y) = (1/D) Σ_p y_p · 1 (per channel). It knows nothing but that an image has a mean level,
and needs neither training nor σ. Its error is the image's own variance around its mean plus
σ²/D: it is hopeless at low noise and hard to beat at very high noise on small images, where
the mean is nearly all that can be recovered. A trained denoiser below it at some σ has not
learned that noise level (a control for budget-limited training, beside the identity, which
is the trivial denoiser at low noise).
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Baseline
from gahb_bench.hookspecs import hookimpl


def image_mean_denoise(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Each (…, H, W) image replaced by its mean; ``sigma`` is ignored (accepted for the contract)."""
    noisy = np.asarray(noisy, dtype=np.float64)
    if noisy.ndim < 2:
        raise ValueError(f"images must have at least 2 dimensions (H, W), got shape {noisy.shape}")
    return np.broadcast_to(noisy.mean(axis=(-2, -1), keepdims=True), noisy.shape).copy()


@hookimpl
def gahb_register_baselines(register):
    register(Baseline(
        name="image-mean",
        denoise=lambda noisy, sigma: image_mean_denoise(noisy, sigma),
        params={},
        description="Trivial control: each pixel replaced by the mean of its noisy image (per channel).",
    ))
