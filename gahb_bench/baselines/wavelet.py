"""Orthogonal periodized 2-D wavelet transform and wavelet-thresholding denoiser.

The baseline of SCIENCE.md §5/§7: an orthonormal wavelet basis {ψ_{j,k}} (PyWavelets, mode
``"periodization"``, orthogonal filters only, so that white noise of variance σ² stays white with
the same variance on every coefficient), and the thresholding estimator

    f̂ = Σ_{j,k} ρ_T(⟨y, ψ_{j,k}⟩) ψ_{j,k} + (coarse approximation of y, kept),

with ρ_T(b) = b·1{|b| > T} (hard) or sign(b)·max(|b| − T, 0) (soft) and T = threshold · σ.
On a C^α image with C^α edges its risk decays like σ (slope ½ of output vs input PSNR, up to
logs) whatever α, because of the edges: the rate the bandlet basis improves on
(``gahb_bench.baselines.bandlets``).

References: S. Mallat, "A Wavelet Tour of Signal Processing", 3rd ed., §11.3;
D. Donoho, I. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81 (1994).
"""

from __future__ import annotations

import warnings

import numpy as np
import pywt

from gahb_bench.contracts import Baseline
from gahb_bench.hookspecs import hookimpl

__all__ = [
    "check_orthogonal_wavelet",
    "default_levels",
    "wavelet_forward",
    "wavelet_inverse",
    "hard_threshold",
    "soft_threshold",
    "wavelet_denoise",
]


def check_orthogonal_wavelet(wavelet: str | pywt.Wavelet) -> pywt.Wavelet:
    """Return ``pywt.Wavelet(wavelet)``; raise ValueError unless it is an orthogonal wavelet.

    Biorthogonal filters (e.g. CDF 9/7 = ``"bior4.4"``) do not give an orthonormal basis: the noise
    is no longer white with variance σ² in the wavelet domain and a threshold in units of σ is wrong.
    """
    try:
        w = wavelet if isinstance(wavelet, pywt.Wavelet) else pywt.Wavelet(wavelet)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unknown discrete wavelet {wavelet!r}: {exc}") from None
    if not w.orthogonal:
        raise ValueError(
            f"wavelet {w.name!r} is not orthogonal (biorthogonal filters are not an orthonormal "
            "basis); use an orthogonal one such as 'db4', 'sym4', 'coif2' or 'haar'"
        )
    return w


def default_levels(size: int) -> int:
    """Number of decomposition levels J for an image side ``size``.

    The largest J with size divisible by 2^J and a coarse approximation at least 4 wide:
    80 → 4 (subbands 40, 20, 10, 5; coarse 5×5), 32 → 3 (16, 8, 4; coarse 4×4), 16 → 2.
    """
    if size < 2:
        raise ValueError(f"image side must be at least 2, got {size}")
    levels = 0
    while size % (2 ** (levels + 1)) == 0 and size // 2 ** (levels + 1) >= 4:
        levels += 1
    return max(levels, 1)


def _check_levels(shape: tuple[int, int], levels: int | None) -> int:
    h, w = shape
    if levels is None:
        levels = default_levels(min(h, w))
    if not isinstance(levels, (int, np.integer)) or isinstance(levels, bool) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    if h % 2**levels or w % 2**levels:
        raise ValueError(f"image shape {shape} is not divisible by 2**levels = {2**levels}")
    return int(levels)


def _as_image_stack(images) -> tuple[np.ndarray, bool]:
    x = np.asarray(images)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"images must be a real numeric array, got dtype {x.dtype}")
    if x.ndim == 2:
        return x[None].astype(np.float64), True
    if x.ndim == 3:
        return x.astype(np.float64), False
    raise ValueError(f"images must have shape (H, W) or (N, H, W), got {x.shape}")


def wavelet_forward(images, wavelet: str = "db4", levels: int | None = None):
    """Orthonormal periodized 2-D DWT of (N, H, W) or (H, W) images, as one coefficient array.

    Returns ``(coefficients, slices)``: ``coefficients`` has the images' shape and holds the
    coarse approximation a_J in its top-left corner and the detail subbands (H, V, D) of each
    scale around it (``pywt.coeffs_to_array`` layout); ``slices`` is the per-subband index list
    for ``wavelet_inverse``. ‖coefficients‖ = ‖image‖ exactly (orthonormal basis).
    """
    w = check_orthogonal_wavelet(wavelet)
    x, single = _as_image_stack(images)
    levels = _check_levels(x.shape[-2:], levels)
    with warnings.catch_warnings():
        # PyWavelets warns when filters are longer than the coarsest subband; with periodization
        # the transform stays exactly orthonormal, so the warning does not apply.
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        coeffs = pywt.wavedec2(x, w, mode="periodization", level=levels, axes=(-2, -1))
    arr, slices = pywt.coeffs_to_array(coeffs, axes=(-2, -1))
    # Keep only the two image axes of each subband slice, so that ``slices`` does not depend on N.
    slices = [slices[0][-2:]] + [{k: v[-2:] for k, v in d.items()} for d in slices[1:]]
    return (arr[0] if single else arr), slices


def wavelet_inverse(coefficients, slices, wavelet: str = "db4") -> np.ndarray:
    """Inverse of :func:`wavelet_forward` (same ``slices`` and ``wavelet``)."""
    w = check_orthogonal_wavelet(wavelet)
    c, single = _as_image_stack(coefficients)
    full = [(slice(None),) + tuple(slices[0])] + [
        {k: (slice(None),) + tuple(v) for k, v in d.items()} for d in slices[1:]]
    coeffs = pywt.array_to_coeffs(c, full, output_format="wavedec2")
    x = pywt.waverec2(coeffs, w, mode="periodization", axes=(-2, -1))
    return x[0] if single else x


def hard_threshold(b: np.ndarray, t) -> np.ndarray:
    """ρ_T(b) = b · 1{|b| > T}."""
    return np.where(np.abs(b) > t, b, 0.0)


def soft_threshold(b: np.ndarray, t) -> np.ndarray:
    """ρ_T(b) = sign(b) · max(|b| − T, 0)."""
    return np.sign(b) * np.maximum(np.abs(b) - t, 0.0)


def _check_sigma(sigma, n: int) -> np.ndarray:
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] not in (1, n)):
        raise ValueError(f"sigma must be a scalar or have one value per image ({n}), got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma must be finite and non-negative")
    return np.broadcast_to(s, (n,)).copy()


def wavelet_denoise(images, sigma, wavelet: str = "db4", threshold: float = 3.0,
                    mode: str = "hard", levels: int | None = None) -> np.ndarray:
    """Wavelet thresholding estimator f̂ = W⁻¹ ρ_T(W y), T = ``threshold`` · σ.

    Parameters
    ----------
    images : (N, H, W) or (H, W) array
        Noisy images y = x + z, z ~ N(0, σ² Id), on the pixel scale.
    sigma : float or (N,) array
        Noise standard deviation (per image if an array).
    wavelet : str
        An orthogonal PyWavelets wavelet (``"db4"`` default; biorthogonal ones are rejected).
    threshold : float
        T / σ (3 by default; the universal threshold would be √(2 log N)).
    mode : {"hard", "soft"}
        Thresholding rule ρ_T.
    levels : int, optional
        Decomposition depth J (default :func:`default_levels`). The coarse approximation a_J is
        kept unthresholded.

    Returns
    -------
    Denoised images, same shape as ``images``, float64.
    """
    if mode not in ("hard", "soft"):
        raise ValueError(f"mode must be 'hard' or 'soft', got {mode!r}")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative number (units of sigma), got {threshold}")
    x, single = _as_image_stack(images)
    sig = _check_sigma(sigma, x.shape[0])
    coef, slices = wavelet_forward(x, wavelet, levels)
    a = slices[0]
    t = (threshold * sig)[:, None, None]
    rho = hard_threshold if mode == "hard" else soft_threshold
    out = rho(coef, t)
    out[(slice(None),) + tuple(a)] = coef[(slice(None),) + tuple(a)]
    rec = wavelet_inverse(out, slices, wavelet)
    return rec[0] if single else rec


def _denoise_batch(mode: str):
    def denoise(noisy: np.ndarray, sigma: float, wavelet: str = "db4", threshold: float = 3.0) -> np.ndarray:
        """Per channel: (B, C, H, W) → (B, C, H, W)."""
        b, c, h, w = noisy.shape
        out = wavelet_denoise(noisy.reshape(b * c, h, w).astype(np.float64), sigma, wavelet=wavelet,
                              threshold=threshold, mode=mode)
        return out.reshape(b, c, h, w)

    return denoise


@hookimpl
def gahb_register_baselines(register):
    for mode in ("hard", "soft"):
        register(Baseline(
            name=f"wavelet-{mode}",
            denoise=_denoise_batch(mode),
            params={"wavelet": "db4", "threshold": 3.0},
            description=f"Orthogonal wavelet {mode} thresholding at T = threshold·σ (periodized, coarse scale kept).",
        ))
