"""Stationary Gaussian images with a power-law spectrum: a calibration class with an exact optimum.

Not in the paper. On the discrete torus of H×W pixels, x ~ N(μ, C) with C the circulant
(periodic, stationary) covariance whose eigenvectors are the Fourier modes and whose
eigenvalues are the power spectrum

    λ_k = c · |k|^{−γ},  k ≠ 0,     λ_0 = c   (the DC variance, the value at |k| = 1),

with k the integer frequencies and c chosen so that every pixel has standard deviation
``std``: Var x(i, j) = (1/d) Σ_k λ_k = std², d = H·W. With the unnormalised FFT of numpy,

    x = μ + ifft2(√λ · fft2(w)),  w ~ N(0, Id),

has covariance exactly F⁻¹ diag(λ) F = C (λ_k = λ_{−k}, so the result is real). Because x is
Gaussian, the MMSE denoiser for y = x + z, z ~ N(0, σ² Id), is linear: the Wiener filter

    f*(y) = μ + ifft2(λ/(λ + σ²) · fft2(y − μ)),

and its mean squared error per pixel is, exactly,

    MSE*(σ) = (1/d) Σ_k λ_k σ² / (λ_k + σ²).

For 2 < γ and σ in the middle range, MSE* ∝ σ^{2(1 − 2/γ)}: the output-vs-input PSNR slope is
1 − 2/γ (γ = 2α + 2 gives α/(α + 1), the rate of C^α regions). The samples are NOT clipped to
[0, 1]: clipping would break Gaussianity and with it the optimality of the Wiener filter, so a
small fraction of pixels lie outside [0, 1] (about 0.1% at the defaults).

References
----------
N. Wiener, "Extrapolation, Interpolation, and Smoothing of Stationary Time Series", 1949.
SCIENCE.md §5 (gahb-bench).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import GenerativeDataset


def power_spectrum(shape: tuple[int, int], gamma: float, std: float) -> np.ndarray:
    """Eigenvalues λ_k (fft order, shape ``shape``) of the covariance: c|k|^{−γ}, λ_0 = c.

    c is set so that the pixel variance (1/d) Σ_k λ_k equals std².
    """
    height, width = _check_shape(shape)
    gamma, std = _check_gamma_std(gamma, std)
    ky = np.fft.fftfreq(height)[:, None] * height
    kx = np.fft.fftfreq(width)[None, :] * width
    radius = np.sqrt(ky**2 + kx**2)
    radius[0, 0] = 1.0
    shape_only = radius ** (-gamma)
    return shape_only * (std**2 * height * width / shape_only.sum())


def sample_gaussian_images(n: int, spectrum: np.ndarray, mean: float = 0.5,
                           rng: np.random.Generator | None = None) -> np.ndarray:
    """``n`` draws x = μ + ifft2(√λ · fft2(w)), w ~ N(0, Id): (n, H, W) float64, not clipped.

    Their covariance is exactly the circulant matrix with eigenvalues ``spectrum`` (fft order).
    Each image consumes its own H·W normal draws in turn, so the first m images never depend on n.
    """
    spectrum = _check_spectrum(spectrum)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"gaussian: n must be a positive integer, got {n!r}")
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"gaussian: rng must be a numpy Generator, got {type(rng).__name__}")
    white = rng.standard_normal((int(n),) + spectrum.shape)
    return float(mean) + np.fft.ifft2(np.sqrt(spectrum) * np.fft.fft2(white)).real


def wiener_gain(spectrum: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Fourier gain λ/(λ + σ²) of the Wiener filter.

    σ a scalar gives (H, W); σ of shape (B,) gives (B, H, W).
    """
    spectrum = _check_spectrum(spectrum)
    sigma = _check_sigma(sigma)
    var = sigma[..., None, None] ** 2
    total = spectrum + var
    # λ = σ = 0 (a mode without variance, no noise): keep y, the limit of the gain as σ → 0.
    return np.divide(spectrum, total, out=np.ones(np.broadcast(spectrum, total).shape),
                     where=total > 0)


def wiener_denoise(y: np.ndarray, spectrum: np.ndarray, sigma: float | np.ndarray,
                   mean: float = 0.5) -> np.ndarray:
    """The exact MMSE denoiser f*(y) = μ + ifft2(λ/(λ + σ²) · fft2(y − μ)) of the class.

    ``y``: (..., H, W); ``sigma``: a scalar or one σ per leading index (shape y.shape[:-2]).
    Returns float64 of y's shape.
    """
    y = np.asarray(y, dtype=float)
    spectrum = _check_spectrum(spectrum)
    if y.ndim < 2 or y.shape[-2:] != spectrum.shape:
        raise ValueError(f"gaussian: images of shape (..., {spectrum.shape[0]}, "
                         f"{spectrum.shape[1]}) expected, got {y.shape}")
    gain = wiener_gain(spectrum, sigma)
    if gain.ndim > 2 and gain.shape[:-2] != y.shape[:-2]:
        raise ValueError(f"gaussian: sigma of shape {np.shape(sigma)} does not match "
                         f"images {y.shape}")
    return mean + np.fft.ifft2(gain * np.fft.fft2(y - mean)).real


def wiener_mse(spectrum: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Exact optimal MSE per pixel, MSE*(σ) = (1/d) Σ_k λ_k σ² / (λ_k + σ²); σ's shape."""
    spectrum = _check_spectrum(spectrum)
    sigma = _check_sigma(sigma)
    var = sigma[..., None, None] ** 2
    total = spectrum + var
    per_mode = np.divide(spectrum * var, total, out=np.zeros(np.broadcast(spectrum, total).shape),
                         where=total > 0)
    return per_mode.mean(axis=(-2, -1))


def wiener_psnr_slope(gamma: float) -> float:
    """Asymptotic output-vs-input PSNR slope 1 − 2/γ of the Wiener filter (γ > 2)."""
    gamma, _ = _check_gamma_std(gamma, 1.0)
    return 1.0 - 2.0 / gamma


class GaussianDataset(GenerativeDataset):
    """The ``gaussian`` calibration class: stationary Gaussian images, spectrum ∝ |k|^{−γ}.

    Parameters
    ----------
    image_size : side in pixels (the torus is image_size × image_size).
    gamma : spectral exponent γ > 0 (γ = 2α + 2 matches C^α regions; natural images ≈ 2).
    mean : the mean grey level μ of every pixel.
    std : the standard deviation of every pixel (sets the overall scale of λ).

    Declares its exact optimum: :meth:`optimal_denoiser` (the Wiener filter) and
    :meth:`optimal_mse` (closed form). Images are not clipped to [0, 1].
    """

    name = "gaussian"

    def __init__(self, image_size: int, gamma: float = 4.0, mean: float = 0.5, std: float = 0.15):
        super().__init__(image_size)
        self.gamma, self.std = _check_gamma_std(gamma, std)
        if isinstance(mean, bool) or not isinstance(mean, (int, float, np.integer, np.floating)) \
                or not np.isfinite(mean):
            raise ValueError(f"gaussian: mean must be a finite number, got {mean!r}")
        self.mean = float(mean)
        self.spectrum = power_spectrum((self.image_size, self.image_size), self.gamma, self.std)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        n = self._check_n(n)
        out = np.empty((n, 1, self.image_size, self.image_size), dtype=np.float32)
        chunk = max(1, 2**22 // self.image_size**2)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            out[start:stop, 0] = sample_gaussian_images(stop - start, self.spectrum, self.mean, rng)
        return out

    def optimal_denoiser(self, y: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
        """f*(y) = E[x | y] for y (B, 1, H, W) and σ a scalar or (B,); float64, same shape."""
        y = np.asarray(y)
        expected = (1, self.image_size, self.image_size)
        if y.ndim != 4 or y.shape[1:] != expected:
            raise ValueError(f"gaussian: y must have shape (B, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}), got {y.shape}")
        sigma = _check_sigma(sigma)
        if sigma.ndim == 1:
            if sigma.shape[0] != y.shape[0]:
                raise ValueError(f"gaussian: {sigma.shape[0]} sigmas for {y.shape[0]} images")
            sigma = sigma[:, None]
        elif sigma.ndim > 1:
            raise ValueError(f"gaussian: sigma must be a scalar or shape (B,), got {sigma.shape}")
        return wiener_denoise(y, self.spectrum, sigma, self.mean)

    def optimal_mse(self, sigma: float | np.ndarray) -> float | np.ndarray:
        """MSE*(σ) per pixel, exact; a float for scalar σ, else an array of σ's shape."""
        mse = wiener_mse(self.spectrum, sigma)
        return float(mse) if mse.ndim == 0 else mse

    def optimal_psnr_slope(self) -> float:
        """The Wiener filter's asymptotic PSNR slope 1 − 2/γ (γ > 2; see :func:`wiener_psnr_slope`)."""
        if self.gamma <= 2:
            raise ValueError(f"gaussian: no power-law rate for gamma = {self.gamma} <= 2")
        return wiener_psnr_slope(self.gamma)

    def declares(self) -> dict[str, Any]:
        out = super().declares()
        out.update({"gamma": self.gamma, "mean": self.mean, "std": self.std,
                    "psnr_slope": wiener_psnr_slope(self.gamma) if self.gamma > 2 else None,
                    "clipped": False})
        return out


def _check_shape(shape: Any) -> tuple[int, int]:
    if len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                              for s in shape):
        raise ValueError(f"gaussian: shape must be two positive integers (H, W), got {shape!r}")
    return int(shape[0]), int(shape[1])


def _check_gamma_std(gamma: Any, std: Any) -> tuple[float, float]:
    for label, value in (("gamma", gamma), ("std", std)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"gaussian: {label} must be a number, got {type(value).__name__}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"gaussian: {label} must be a finite number > 0, got {value}")
    return float(gamma), float(std)


def _check_spectrum(spectrum: Any) -> np.ndarray:
    spectrum = np.asarray(spectrum, dtype=float)
    if spectrum.ndim != 2 or not np.all(spectrum >= 0) or not np.all(np.isfinite(spectrum)):
        raise ValueError("gaussian: the spectrum must be a finite, non-negative (H, W) array")
    return spectrum


def _check_sigma(sigma: Any) -> np.ndarray:
    sigma = np.asarray(sigma, dtype=float)
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError(f"gaussian: sigma must be finite and >= 0, got {sigma}")
    return sigma


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="gaussian",
        build=GaussianDataset,
        params={"gamma": 4.0, "mean": 0.5, "std": 0.15},
        description="Stationary Gaussian images, spectrum ∝ |k|^-gamma, unclipped; exact Wiener "
                    "optimum (calibration class, not in the paper).",
    ))
