"""PSNR and denoising-curve arithmetic (pure functions, peak 1).

PSNR(x, x̂) = 10 log10(1 / MSE), MSE = ‖x − x̂‖² / d. The input PSNR of noise level σ is
−20 log10 σ (the expected MSE of y = x + z is σ²).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def mse_per_image(clean: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Mean squared error of each image of a batch (N, ...) → (N,)."""
    if clean.shape != estimate.shape:
        raise ValueError(f"shapes differ: clean {clean.shape} vs estimate {estimate.shape}")
    diff = (np.asarray(clean, np.float64) - np.asarray(estimate, np.float64)).reshape(len(clean), -1)
    return np.mean(diff**2, axis=1)


def psnr_from_mse(mse: np.ndarray | float) -> np.ndarray:
    """10 log10(1 / MSE), with MSE floored at 1e-20 so a perfect estimate stays finite."""
    return 10.0 * np.log10(1.0 / np.maximum(np.asarray(mse, np.float64), 1e-20))


def input_psnr(sigma: np.ndarray | float) -> np.ndarray:
    """The nominal PSNR of noisy images at noise level σ: −20 log10 σ."""
    return -20.0 * np.log10(np.asarray(sigma, np.float64))


def sigma_grid(sigma_min: float, sigma_max: float, n_sigma: int) -> np.ndarray:
    """``n_sigma`` noise levels spaced evenly in log σ (so evenly in input PSNR)."""
    if not 0 < sigma_min < sigma_max or n_sigma < 2:
        raise ValueError(f"need 0 < sigma_min < sigma_max and n_sigma >= 2, got {sigma_min}, {sigma_max}, {n_sigma}")
    return np.geomspace(sigma_min, sigma_max, int(n_sigma))


def settings_sigma_grid(settings) -> np.ndarray:
    """The σ grid a metric's settings describe: :func:`sigma_grid` of their ``sigma_min``,
    ``sigma_max`` and ``n_sigma``."""
    return sigma_grid(settings["sigma_min"], settings["sigma_max"], settings["n_sigma"])


def sigma_coords(sigmas: np.ndarray, dim: str = "sigma", psnr_dim: str = "psnr_in") -> dict:
    """Store coordinates of a σ grid: the dimension ``dim`` and its input PSNR beside it."""
    return {dim: sigmas, psnr_dim: (dim, input_psnr(sigmas))}


def denoising_curves(
    denoisers: Sequence[Callable[[np.ndarray, float], np.ndarray]],
    images: np.ndarray,
    sigmas: np.ndarray,
    rng: np.random.Generator,
    min_evaluations: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean output PSNR and MSE of several denoisers on the SAME noisy images, for each σ.

    ``denoisers[k](noisy, sigma)`` maps (B, C, H, W) float32 noisy images to estimates. Each
    image is used ⌈min_evaluations / N⌉ times with independent noise, so a one-image training
    set is still measured on ``min_evaluations`` noisy images; every denoiser sees the same
    draws, so differences between their curves carry no noise-sampling error of their own.
    Returns (psnr (K, n_sigma), mse (K, n_sigma)): PSNR is averaged over noisy images (the
    paper's convention), MSE is the mean per-pixel error.
    """
    repeats = max(1, -(-int(min_evaluations) // len(images)))
    clean = np.repeat(images, repeats, axis=0)
    psnr = np.empty((len(denoisers), len(sigmas)))
    mse = np.empty_like(psnr)
    for k, sigma in enumerate(sigmas):
        noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        for d, denoise in enumerate(denoisers):
            per_image = mse_per_image(clean, denoise(noisy, float(sigma)))
            psnr[d, k] = psnr_from_mse(per_image).mean()
            mse[d, k] = per_image.mean()
    return psnr, mse


def denoising_curve(
    denoise: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    sigmas: np.ndarray,
    rng: np.random.Generator,
    min_evaluations: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`denoising_curves` of one blind denoiser ``denoise(noisy)``: (psnr, mse), each (n_sigma,)."""
    psnr, mse = denoising_curves([lambda noisy, sigma: denoise(noisy)], images, sigmas, rng, min_evaluations)
    return psnr[0], mse[0]


def psnr_slope(sigmas: np.ndarray, psnr_out: np.ndarray, lo: float | None = None,
               hi: float | None = None) -> float:
    """Least-squares slope of output PSNR against input PSNR over σ ∈ [lo, hi].

    An MSE ∝ σ^{2s} rate shows as slope s (s = α/(α+1) for C^α images at the optimum).
    """
    sigmas = np.asarray(sigmas, np.float64)
    keep = np.ones(len(sigmas), bool)
    if lo is not None:
        keep &= sigmas >= lo
    if hi is not None:
        keep &= sigmas <= hi
    if keep.sum() < 2:
        raise ValueError("need at least two noise levels in the fitting range")
    return float(np.polyfit(input_psnr(sigmas[keep]), np.asarray(psnr_out)[keep], 1)[0])


def psnr_slope_bootstrap(sigmas: np.ndarray, psnr_per_image: np.ndarray, lo: float | None = None,
                         hi: float | None = None, n_boot: int = 1000, level: float = 0.95,
                         rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """:func:`psnr_slope` of the mean curve of ``psnr_per_image`` (n_images, n_sigma), with a
    bootstrap interval over images.

    Each bootstrap draw resamples the images with replacement (the same images at every σ, so
    the correlation across noise levels is kept), averages their PSNR per σ and refits the slope;
    the interval holds the central ``level`` of the draws. Returns (slope, low, high).
    """
    p = np.asarray(psnr_per_image, np.float64)
    if p.ndim != 2 or p.shape[1] != len(np.atleast_1d(sigmas)):
        raise ValueError(f"psnr_per_image must be (n_images, n_sigma = {len(np.atleast_1d(sigmas))}), "
                         f"got {p.shape}")
    if not 0 < level < 1 or n_boot < 2:
        raise ValueError("level must be in (0, 1) and n_boot at least 2")
    rng = np.random.default_rng(0) if rng is None else rng
    slope = psnr_slope(sigmas, p.mean(axis=0), lo, hi)
    draws = rng.integers(0, len(p), size=(n_boot, len(p)))
    boot = np.array([psnr_slope(sigmas, p[idx].mean(axis=0), lo, hi) for idx in draws])
    tail = 50 * (1 - level)
    low, high = np.percentile(boot, [tail, 100 - tail])
    return slope, float(low), float(high)
