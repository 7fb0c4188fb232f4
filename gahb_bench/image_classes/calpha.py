"""C^α images: two C^α regions separated by a C^α contour (the paper's Algorithm 2, App. E).

An image is the graph of a random periodic curve y = c(x) splitting the square into an upper
and a lower region; each region carries its own random smooth field, and the two fields are
rescaled to disjoint grey ranges so that the curve is an edge::

    x(i, j) = m(i, j) · B_low(i, j) + (1 − m(i, j)) · B_up(i, j),

with m the indicator (or, anti-aliased, the area fraction) of the part of pixel (i, j) below
the contour. This is the class on which the optimal denoising rate is known:
MSE* ∼ σ^{2α/(α+1)}, i.e. an output-vs-input PSNR slope α/(α+1), reached by bandlets, while
wavelet thresholding stays at the α = 1 rate because of the contour.

Synthesis (as the public code): white noise u ~ U[−1, 1] filtered in Fourier by |k|^{−p}
(integer frequencies k on the discrete torus, the DC gain set to 1, the gain at |k| = 1),
in 1-D for the contour and in 2-D for each region. A field whose power spectrum is |k|^{−2p}
in d dimensions has Hölder (Zygmund) exponent p − d/2: its L²-normalised wavelet coefficients
at scale 2^{−j} have standard deviation ∝ 2^{−jp}, and C^s is characterised by the bound
2^{−j(s + d/2)}. Hence the two conventions (SCIENCE.md §5, the α-convention caution):

``"paper-code"``
    the public code's filters: |k|^{−α} for the contour and |k|^{−α_regions} for the regions.
    The contour is then Hölder α − ½ and the regions Hölder α_regions − 1: rougher than C^α.
``"holder"``
    Hölder-exact: contour filter |k|^{−(α+½)} (power spectrum |k|^{−(2α+1)}), region filter
    |k|^{−(α_regions+1)} (power spectrum |k|^{−(2α_regions+2)}), so the contour is C^α and the
    regions C^{α_regions} (for integer α, in the Hölder–Zygmund sense).

Geometry (both conventions, as the public code): the contour in pixels is
c(x) = size/2 + size · g(x), with g the filtered noise, so its amplitude grows like √size and
a column may lie entirely in one region. Each region field is rescaled affinely (min–max) to a
grey range; the public code draws the two ranges as [r, 1] and [0, r′] with r, r′ ~ U[0, 1]
independent, which overlap in half the images; here (r, r′) are conditioned on r > r′
(equivalently, sorted), so the ranges are always disjoint and the edge always exists. A fair
coin chooses which region is the bright one. Affine maps do not change Hölder exponents.

References
----------
Kadkhodaie, Guth, Simoncelli, Mallat, "Generalization in diffusion models arises from
geometry-adaptive harmonic representations", ICLR 2024, App. E (Alg. 2).
Y. Meyer, "Wavelets and Operators", 1992, §6.4 (wavelet characterisation of Hölder spaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import GenerativeDataset

CONVENTIONS = ("holder", "paper-code")
#: Horizontal sub-columns per pixel of the anti-aliased mask (the vertical coverage is exact).
ANTIALIAS_SUBSAMPLES = 8
#: Upper bound on the float64 elements of one chunk's mask temporaries (~128 MB).
_CHUNK_ELEMENTS = 2**24


def filter_exponents(alpha: float, alpha_regions: float | None = None,
                     convention: str = "holder") -> tuple[float, float]:
    """Fourier filter exponents (p_contour, p_regions): the noise is filtered by |k|^{−p}.

    ``"paper-code"``: (α, α_regions). ``"holder"``: (α + ½, α_regions + 1).
    """
    alpha, alpha_regions = _check_alphas(alpha, alpha_regions)
    convention = _check_convention(convention)
    if convention == "paper-code":
        return alpha, alpha_regions
    return alpha + 0.5, alpha_regions + 1.0


def holder_exponents(alpha: float, alpha_regions: float | None = None,
                     convention: str = "holder") -> tuple[float, float]:
    """Effective Hölder exponents (contour, regions) of the images: p_contour − ½, p_regions − 1."""
    p_contour, p_regions = filter_exponents(alpha, alpha_regions, convention)
    return p_contour - 0.5, p_regions - 1.0


def power_law_filter(shape: tuple[int, ...], exponent: float) -> np.ndarray:
    """The Fourier multiplier |k|^{−exponent} on the discrete torus of ``shape`` (fft order).

    k are integer frequencies (``fftfreq(n) · n``), |k| the Euclidean norm over the axes; the
    DC gain is set to 1, the gain at |k| = 1, as in the public code.
    """
    grids = np.meshgrid(*[np.fft.fftfreq(n) * n for n in shape], indexing="ij", sparse=True)
    radius = np.sqrt(sum(g**2 for g in grids))
    radius[(0,) * len(shape)] = 1.0
    return radius ** (-float(exponent))


def contour_spectrum(noise: np.ndarray, exponent: float) -> np.ndarray:
    """Spectrum (fft along the last axis) of the contour in pixels, from noise (n, size).

    c(x) = size/2 + size · Re ifft(fft(u) |k|^{−p}); the constant size/2 sits in the DC term.
    """
    size = noise.shape[-1]
    spectrum = np.fft.fft(noise, axis=-1) * power_law_filter((size,), exponent) * size
    spectrum[..., 0] += size * size / 2.0
    return spectrum


def evaluate_contour(spectrum: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The contour (trigonometric interpolant of its samples) at column j + ``offsets``.

    Sample j sits at the centre x = j + ½ of column j; ``offsets`` (s,) are shifts in pixels.
    Returns (n, size, s). The real part of the phase-shifted inverse FFT is the real
    trigonometric interpolant (the Nyquist term becomes a cosine).
    """
    size = spectrum.shape[-1]
    k = np.fft.fftfreq(size) * size
    phase = np.exp(2j * np.pi * np.outer(offsets, k) / size)          # (s, size)
    values = np.fft.ifft(spectrum[:, None, :] * phase[None], axis=-1).real  # (n, s, size)
    return np.moveaxis(values, 1, 2)


def region_fields(noise: np.ndarray, exponent: float) -> np.ndarray:
    """Region fields Re ifft2(fft2(u) · |k|^{−p}) of white noise u, shape (..., size, size)."""
    filt = power_law_filter(noise.shape[-2:], exponent)
    return np.fft.ifft2(np.fft.fft2(noise, axes=(-2, -1)) * filt, axes=(-2, -1)).real


def rescale_range(field: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Affine min–max rescaling of each (size, size) field of (n, size, size) onto [low, high]."""
    fmin = field.min(axis=(-2, -1), keepdims=True)
    fmax = field.max(axis=(-2, -1), keepdims=True)
    unit = (field - fmin) / np.maximum(fmax - fmin, np.finfo(float).tiny)
    return low[:, None, None] + (high - low)[:, None, None] * unit


def contour_mask(spectrum: np.ndarray, antialias: bool = False,
                 subsamples: int = ANTIALIAS_SUBSAMPLES) -> np.ndarray:
    """The lower-region mask m (n, size, size) of contours given by their spectra.

    Row i of the image covers [i, i+1) vertically (rows grow downwards), column j covers
    [j, j+1). Sharp: m(i, j) = 1 iff the pixel centre is below the contour, i + ½ ≥ c(j + ½)
    (the public code's ``mask[:round(c)] = 0``). Anti-aliased: the area fraction of the pixel
    below the curve, exact vertically, clip(i + 1 − c(x), 0, 1), averaged over ``subsamples``
    equally spaced abscissae x inside the column (the contour is evaluated there exactly).
    """
    size = spectrum.shape[-1]
    rows = np.arange(size, dtype=float)[:, None, None]
    if not antialias:
        contour = evaluate_contour(spectrum, np.zeros(1))[..., 0]             # (n, size)
        return (rows[..., 0] + 0.5 >= contour[:, None, :]).astype(float)
    offsets = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    contour = evaluate_contour(spectrum, offsets)                           # (n, size, s)
    coverage = np.clip(rows + 1.0 - contour[:, None, :, :], 0.0, 1.0)       # (n, row, col, s)
    return coverage.mean(axis=-1)


def compose(mask: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """x = m · lower + (1 − m) · upper: a convex combination, so it stays in [0, 1]."""
    return mask * lower + (1.0 - mask) * upper


@dataclass(frozen=True)
class CAlphaParts:
    """Every intermediate of :func:`calpha_components`, for analysis and tests.

    contour: (n, size) contour height in pixels at the column centres (rows grow downwards);
    spectrum: (n, size) complex, its FFT (evaluate anywhere with :func:`evaluate_contour`);
    lower, upper: (n, size, size) rescaled region fields; mask: (n, size, size) lower-region
    mask; images: (n, size, size) in [0, 1]; lower_is_bright: (n,) bool.
    """

    contour: np.ndarray
    spectrum: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    mask: np.ndarray
    images: np.ndarray
    lower_is_bright: np.ndarray


def calpha_components(n: int, size: int, alpha: float, *, alpha_regions: float | None = None,
                      convention: str = "holder", antialias: bool = False,
                      rng: np.random.Generator | None = None) -> CAlphaParts:
    """Draw ``n`` C^α images and return them with their parts (see :func:`calpha_images`)."""
    n, size = _check_n_size(n, size)
    p_contour, p_regions = filter_exponents(alpha, alpha_regions, convention)
    rng = _check_rng(rng)
    # Draws are made image by image, so the first m images never depend on n (prefix-stable),
    # and a long run can be generated in chunks from the same generator.
    contour_noise = np.empty((n, size))
    region_noise = np.empty((n, 2, size, size))
    levels = np.empty((n, 2))
    flips = np.empty(n, dtype=bool)
    for i in range(n):
        contour_noise[i] = rng.uniform(-1.0, 1.0, size)
        region_noise[i] = rng.uniform(-1.0, 1.0, (2, size, size))
        levels[i] = np.sort(rng.uniform(0.0, 1.0, 2))
        flips[i] = rng.integers(0, 2) == 1
    spectrum = contour_spectrum(contour_noise, p_contour)
    contour = evaluate_contour(spectrum, np.zeros(1))[..., 0]
    fields = region_fields(region_noise, p_regions)
    dark_top, bright_bottom = levels[:, 0], levels[:, 1]
    dark = rescale_range(fields[:, 0], np.zeros(n), dark_top)
    bright = rescale_range(fields[:, 1], bright_bottom, np.ones(n))
    lower = np.where(flips[:, None, None], bright, dark)
    upper = np.where(flips[:, None, None], dark, bright)
    chunk = max(1, _CHUNK_ELEMENTS // (size * size * (ANTIALIAS_SUBSAMPLES if antialias else 1)))
    mask = np.concatenate([contour_mask(spectrum[s:s + chunk], antialias)
                           for s in range(0, n, chunk)])
    images = compose(mask, lower, upper)
    return CAlphaParts(contour=contour, spectrum=spectrum, lower=lower, upper=upper, mask=mask,
                       images=images, lower_is_bright=flips)


def calpha_images(n: int, size: int, alpha: float, *, alpha_regions: float | None = None,
                  convention: str = "holder", antialias: bool = False,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """``n`` C^α images of ``size``×``size``: (n, size, size) float64 in [0, 1].

    Parameters
    ----------
    n, size : number of images and their side in pixels (any size ≥ 4).
    alpha : regularity parameter of the contour (> 0).
    alpha_regions : regularity parameter of the two regions (> 0); defaults to ``alpha``.
    convention : ``"holder"`` (the images really are C^α: contour filter |k|^{−(α+½)}, region
        filter |k|^{−(α_regions+1)}) or ``"paper-code"`` (the public code's filters |k|^{−α}:
        Hölder α − ½ contour, α_regions − 1 regions). See :func:`holder_exponents`.
    antialias : if True, the mask is the pixel area fraction below the contour (exact
        vertically, 8 sub-columns horizontally) instead of a sharp 0/1 mask.
    rng : numpy Generator (a fresh unseeded one if None). The same generator state gives the
        same images, and the first m images of a call do not depend on n.
    """
    return calpha_components(n, size, alpha, alpha_regions=alpha_regions, convention=convention,
                             antialias=antialias, rng=rng).images


class CAlphaDataset(GenerativeDataset):
    """The C^α image class (``calpha``): an unlimited generator of :func:`calpha_images`.

    Parameters
    ----------
    image_size : side in pixels.
    alpha, alpha_regions, convention, antialias : as in :func:`calpha_images`.
    """

    name = "calpha"
    #: Images generated per call of :func:`calpha_images` (bounds memory; results are identical).
    chunk = 512

    def __init__(self, image_size: int, alpha: float = 2.0, alpha_regions: float | None = None,
                 convention: str = "holder", antialias: bool = False):
        super().__init__(image_size)
        self.alpha, self.alpha_regions = _check_alphas(alpha, alpha_regions)
        self.convention = _check_convention(convention)
        if not isinstance(antialias, (bool, np.bool_)):
            raise TypeError(f"calpha: antialias must be a bool, got {type(antialias).__name__}")
        self.antialias = bool(antialias)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        n = self._check_n(n)
        out = np.empty((n, 1, self.image_size, self.image_size), dtype=np.float32)
        for start in range(0, n, self.chunk):
            stop = min(n, start + self.chunk)
            out[start:stop, 0] = calpha_images(
                stop - start, self.image_size, self.alpha, alpha_regions=self.alpha_regions,
                convention=self.convention, antialias=self.antialias, rng=rng)
        return out

    def declares(self) -> dict[str, Any]:
        holder_contour, holder_regions = holder_exponents(self.alpha, self.alpha_regions,
                                                          self.convention)
        out = super().declares()
        out.update({
            "alpha": self.alpha,
            "alpha_regions": self.alpha_regions,
            "convention": self.convention,
            "holder_contour": holder_contour,
            "holder_regions": holder_regions,
            "antialias": self.antialias,
            "optimal_psnr_slope": min(holder_contour, holder_regions)
            / (1.0 + min(holder_contour, holder_regions)),
        })
        return out


def _check_alphas(alpha: Any, alpha_regions: Any) -> tuple[float, float]:
    values = []
    for label, value in (("alpha", alpha), ("alpha_regions", alpha if alpha_regions is None
                                            else alpha_regions)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"calpha: {label} must be a number, got {type(value).__name__}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"calpha: {label} must be a finite number > 0, got {value}")
        values.append(float(value))
    return values[0], values[1]


def _check_convention(convention: Any) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"calpha: convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def _check_n_size(n: Any, size: Any) -> tuple[int, int]:
    for label, value, low in (("n", n, 1), ("size", size, 4)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"calpha: {label} must be an integer, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"calpha: {label} must be at least {low}, got {value}")
    return int(n), int(size)


def _check_rng(rng: Any) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"calpha: rng must be a numpy Generator, got {type(rng).__name__}")
    return rng


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="calpha",
        build=CAlphaDataset,
        params={"alpha": 2.0, "alpha_regions": None, "convention": "holder", "antialias": False},
        description="Two C^α regions split by a C^α contour (App. E, Alg. 2); "
                    "convention 'holder' (exact) or 'paper-code'.",
    ))
