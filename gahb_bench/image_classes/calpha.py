"""C^α images: two C^α regions separated by a C^α contour (the paper's Algorithm 2, App. E).

An image is the graph of a random periodic curve y = c(x) splitting the square into an upper
and a lower region; each region carries its own random smooth field, and the two fields are
rescaled to a bright and a dark grey range so that the curve is an edge::

    x(i, j) = m(i, j) · B_low(i, j) + (1 − m(i, j)) · B_up(i, j),

with m the indicator of the part of pixel (i, j) below the contour (sharp, box-blurred as the
public code, or anti-aliased: see ``edge`` below). This is the class on which the optimal denoising rate is known:
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
grey range, a fair coin choosing which region is the bright one; affine maps do not change
Hölder exponents. Two choices are named parameters, with the public code's as the default of
``convention="paper-code"``:

``edge`` (how the mask m is drawn)
    ``"box2"`` (the public code, ``make_C_alpha_images(factor=(2, 2))``, its checkpoints are
    named "blurredx2"): the sharp mask of the contour rounded to whole pixels, then averaged
    by a 2×2 box, m(i, j) = mean of m₀ over rows i−1, i and columns j−1, j, with reflection at
    the top and left borders (the code pads by one pixel, reflect, then crops its last row and
    column). Values in {0, ¼, ½, ¾, 1}; the edge is half a pixel up and left of the contour.
    ``"sharp"``: the 0/1 mask of the pixel centres below the contour.
    ``"antialias"``: the exact area fraction of each pixel below the contour.
``grey_ranges`` (the two regions' grey levels)
    ``"independent"`` (the public code): the bright region on [r, 1], the dark one on [0, r′],
    r, r′ ~ U[0, 1] independent, so the ranges overlap in half the images and the "edge" may
    be faint or absent. ``"disjoint"``: (r, r′) conditioned on r > r′ (sorted), so the ranges
    never overlap and the edge always exists.

Statistics that tell the two apart (80×80, α = 2, measured on the public generator and here,
``tests/image_classes/test_calpha_paper_code.py``): the mean over images of the largest
vertical pixel jump is 0.37 with ``box2`` + ``independent`` and 0.73 with ``antialias`` +
``disjoint``; wavelet hard thresholding's PSNR slope over σ ∈ [0.01, 0.1] is 0.75 against 0.83.

One quirk of the public code is not reproduced: a contour rounded above the top row
(c < 0) is used as a negative slice index (``mask[0:c] = 0``) and wraps to the bottom of the
image; here such a column lies wholly in the lower region. It concerns 0.001% of the columns
at 80 px (α = 1) and 0.4% at 32 px.

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
EDGES = ("box2", "sharp", "antialias")
GREY_RANGES = ("independent", "disjoint")
#: The defaults of ``edge`` and ``grey_ranges`` for each convention: the public code's for
#: "paper-code"; a sharp edge between disjoint ranges for "holder".
CONVENTION_DEFAULTS = {"paper-code": ("box2", "independent"), "holder": ("sharp", "disjoint")}
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


def contour_mask(spectrum: np.ndarray, edge: str = "sharp",
                 subsamples: int = ANTIALIAS_SUBSAMPLES) -> np.ndarray:
    """The lower-region mask m (n, size, size) of contours given by their spectra.

    Row i of the image covers [i, i+1) vertically (rows grow downwards), column j covers
    [j, j+1). ``edge`` (see the module docstring):

    * ``"sharp"``: m(i, j) = 1 iff the pixel centre is below the contour, i + ½ ≥ c(j + ½).
    * ``"box2"``: m₀(i, j) = 1 iff i ≥ round(c(j + ½) − size/2) + ⌊size/2⌋ (the public code's
      rounding), then m = the 2×2 box average of m₀ over rows i−1, i and columns j−1, j, row
      and column −1 reflected to 1.
    * ``"antialias"``: the area fraction of the pixel below the curve, exact vertically,
      clip(i + 1 − c(x), 0, 1), averaged over ``subsamples`` equally spaced abscissae x inside
      the column (the contour is evaluated there exactly).
    """
    edge = _check_choice("edge", edge, EDGES)
    size = spectrum.shape[-1]
    rows = np.arange(size, dtype=float)[:, None, None]
    if edge == "sharp":
        contour = evaluate_contour(spectrum, np.zeros(1))[..., 0]             # (n, size)
        return (rows[..., 0] + 0.5 >= contour[:, None, :]).astype(float)
    if edge == "box2":
        contour = evaluate_contour(spectrum, np.zeros(1))[..., 0]
        start = np.round(contour - size / 2.0) + size // 2                     # first lower row
        sharp = (rows[..., 0] >= start[:, None, :]).astype(float)
        padded = np.concatenate([sharp[:, 1:2], sharp], axis=1)                # row −1 := row 1
        padded = np.concatenate([padded[:, :, 1:2], padded], axis=2)           # column −1 := column 1
        return 0.25 * (padded[:, :-1, :-1] + padded[:, 1:, :-1] + padded[:, :-1, 1:] + padded[:, 1:, 1:])
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
                      convention: str = "holder", edge: str | None = None, grey_ranges: str | None = None,
                      rng: np.random.Generator | None = None) -> CAlphaParts:
    """Draw ``n`` C^α images and return them with their parts (see :func:`calpha_images`)."""
    n, size = _check_n_size(n, size)
    p_contour, p_regions = filter_exponents(alpha, alpha_regions, convention)
    edge, grey_ranges = resolve_geometry(convention, edge, grey_ranges)
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
        levels[i] = rng.uniform(0.0, 1.0, 2)  # (bottom of the bright range, top of the dark range)
        flips[i] = rng.integers(0, 2) == 1
    spectrum = contour_spectrum(contour_noise, p_contour)
    contour = evaluate_contour(spectrum, np.zeros(1))[..., 0]
    fields = region_fields(region_noise, p_regions)
    if grey_ranges == "disjoint":
        levels = np.sort(levels, axis=1)[:, ::-1]  # conditioned on r > r': the larger is the bright bottom
    bright_bottom, dark_top = levels[:, 0], levels[:, 1]
    dark = rescale_range(fields[:, 0], np.zeros(n), dark_top)
    bright = rescale_range(fields[:, 1], bright_bottom, np.ones(n))
    lower = np.where(flips[:, None, None], bright, dark)
    upper = np.where(flips[:, None, None], dark, bright)
    chunk = max(1, _CHUNK_ELEMENTS // (size * size * (ANTIALIAS_SUBSAMPLES if edge == "antialias" else 1)))
    mask = np.concatenate([contour_mask(spectrum[s:s + chunk], edge)
                           for s in range(0, n, chunk)])
    images = compose(mask, lower, upper)
    return CAlphaParts(contour=contour, spectrum=spectrum, lower=lower, upper=upper, mask=mask,
                       images=images, lower_is_bright=flips)


def calpha_images(n: int, size: int, alpha: float, *, alpha_regions: float | None = None,
                  convention: str = "holder", edge: str | None = None, grey_ranges: str | None = None,
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
    edge : ``"box2"`` (the public code's 2×2-box-blurred mask), ``"sharp"`` or ``"antialias"``
        (the exact pixel area fraction below the contour); None: the convention's default
        (:data:`CONVENTION_DEFAULTS`). See :func:`contour_mask`.
    grey_ranges : ``"independent"`` (the public code: the two ranges may overlap) or
        ``"disjoint"``; None: the convention's default.
    rng : numpy Generator (a fresh unseeded one if None). The same generator state gives the
        same images, and the first m images of a call do not depend on n.
    """
    return calpha_components(n, size, alpha, alpha_regions=alpha_regions, convention=convention,
                             edge=edge, grey_ranges=grey_ranges, rng=rng).images


class CAlphaDataset(GenerativeDataset):
    """The C^α image class (``calpha``): an unlimited generator of :func:`calpha_images`.

    Parameters
    ----------
    image_size : side in pixels.
    alpha, alpha_regions, convention, edge, grey_ranges : as in :func:`calpha_images`
        (``edge`` and ``grey_ranges`` None: the convention's defaults).
    """

    name = "calpha"
    #: Images generated per call of :func:`calpha_images` (bounds memory; results are identical).
    chunk = 512

    def __init__(self, image_size: int, alpha: float = 2.0, alpha_regions: float | None = None,
                 convention: str = "holder", edge: str | None = None, grey_ranges: str | None = None):
        super().__init__(image_size)
        self.alpha, self.alpha_regions = _check_alphas(alpha, alpha_regions)
        self.convention = _check_convention(convention)
        self.edge, self.grey_ranges = resolve_geometry(self.convention, edge, grey_ranges)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        n = self._check_n(n)
        out = np.empty((n, 1, self.image_size, self.image_size), dtype=np.float32)
        for start in range(0, n, self.chunk):
            stop = min(n, start + self.chunk)
            out[start:stop, 0] = calpha_images(
                stop - start, self.image_size, self.alpha, alpha_regions=self.alpha_regions,
                convention=self.convention, edge=self.edge, grey_ranges=self.grey_ranges, rng=rng)
        return out

    def optimal_psnr_slope(self) -> float:
        """The optimal rate's output-vs-input PSNR slope s/(s + 1), s the smaller of the contour's
        and the regions' Hölder exponents (α/(α+1) in the Hölder convention)."""
        s = min(holder_exponents(self.alpha, self.alpha_regions, self.convention))
        return s / (1.0 + s)

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
            "edge": self.edge,
            "grey_ranges": self.grey_ranges,
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
    return _check_choice("convention", convention, CONVENTIONS)


def _check_choice(label: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"calpha: {label} must be one of {choices}, got {value!r}")
    return value


def resolve_geometry(convention: str, edge: str | None, grey_ranges: str | None) -> tuple[str, str]:
    """(edge, grey_ranges), None replaced by the convention's default, each checked."""
    default_edge, default_ranges = CONVENTION_DEFAULTS[_check_convention(convention)]
    return (_check_choice("edge", default_edge if edge is None else edge, EDGES),
            _check_choice("grey_ranges", default_ranges if grey_ranges is None else grey_ranges, GREY_RANGES))


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
        params={"alpha": 2.0, "alpha_regions": None, "convention": "holder", "edge": None,
                "grey_ranges": None},
        description="Two C^α regions split by a C^α contour (App. E, Alg. 2); "
                    "convention 'holder' (exact) or 'paper-code' (the public code's images).",
    ))
