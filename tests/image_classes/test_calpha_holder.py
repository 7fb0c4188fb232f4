"""C^α images: the Hölder exponents estimated back from generated images, and the basic contract.

The estimator uses the wavelet characterisation of Hölder spaces: for an L²-normalised
orthogonal wavelet with more than s vanishing moments, the coefficients of a C^s function in
d dimensions decay like 2^{−j(s + d/2)} at scale 2^{−j}. For the discrete transform of an
image, level ℓ (ℓ = 1 the finest) is scale 2^{ℓ}·pixel, so log2 RMS(level ℓ) grows with slope
s + d/2 in ℓ; we fit that slope by least squares and subtract d/2.

* Regions (d = 2): 2-D DWT of the images themselves, keeping only the coefficients whose
  whole support lies inside one pure region (found exactly by transforming the indicator of
  "not this region" with an all-ones filter bank: a coefficient is clean iff that is zero), so
  neither the contour nor the wrap-around of the periodised transform contaminates them.
* Contour (d = 1): 1-D DWT of the contour heights c(j + ½) from which the images were drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
import pywt

from gahb_bench.image_classes.calpha import (
    CAlphaDataset,
    calpha_components,
    calpha_images,
    evaluate_contour,
    filter_exponents,
    gahb_register_image_classes,
    holder_exponents,
)

TOL = 0.3


def _wavelet(holder: float) -> pywt.Wavelet:
    """Daubechies wavelet with ⌈s⌉ + 2 vanishing moments (> s, as the characterisation needs)."""
    return pywt.Wavelet(f"db{int(np.ceil(holder + 1e-9)) + 2}")


def _support_wavelet(wavelet: pywt.Wavelet) -> pywt.Wavelet:
    ones = [1.0] * wavelet.dec_len
    return pywt.Wavelet("support", filter_bank=[ones, ones, ones, ones])


def _fit_slope(log_rms: np.ndarray) -> np.ndarray:
    """Least-squares slope of log2 RMS against the level 1…L along the last axis."""
    levels = np.arange(1, log_rms.shape[-1] + 1, dtype=float)
    centred = levels - levels.mean()
    return (log_rms - log_rms.mean(axis=-1, keepdims=True)) @ centred / (centred @ centred)


def estimate_contour_holder(contour: np.ndarray, holder: float, levels: int = 4) -> float:
    """Hölder exponent of 1-D periodic curves (n, size): mean fitted slope − ½."""
    coeffs = pywt.wavedec(contour, _wavelet(holder), mode="periodization", level=levels, axis=-1)
    log_rms = np.stack([0.5 * np.log2(np.mean(d**2, axis=-1)) for d in coeffs[:0:-1]], axis=-1)
    return float(np.mean(_fit_slope(log_rms)) - 0.5)


def estimate_region_holder(images: np.ndarray, mask: np.ndarray, holder: float,
                           levels: int = 3) -> float:
    """Hölder exponent of the regions, from the images' wavelet coefficients away from the edge.

    Per image and per region, log2 RMS of the clean detail coefficients (H, V, D pooled) per
    level; the slope is fitted per (image, region) and averaged; minus d/2 = 1.
    """
    wavelet = _wavelet(holder)
    support = _support_wavelet(wavelet)
    slopes = []
    for image, m in zip(images, mask):
        coeffs = pywt.wavedec2(image, wavelet, mode="periodization", level=levels)
        for region in (m == 0, m == 1):
            touched = pywt.wavedec2((~region).astype(float), support, mode="periodization",
                                    level=levels)
            log_rms = []
            for level in range(1, levels + 1):
                clean = np.stack(touched[-level]) == 0
                if clean.sum() < 8:
                    break
                log_rms.append(0.5 * np.log2(np.mean(np.stack(coeffs[-level])[clean] ** 2)))
            if len(log_rms) == levels:
                slopes.append(_fit_slope(np.array(log_rms)))
    assert len(slopes) >= 4, "too few regions large enough for the estimate"
    return float(np.mean(slopes) - 1.0)


def _estimates(alpha: float, convention: str, edge: str, n: int, size: int, seed: int):
    parts = calpha_components(n, size, alpha, convention=convention, edge=edge,
                              rng=np.random.default_rng(seed))
    holder_contour, holder_regions = holder_exponents(alpha, None, convention)
    return (holder_contour, estimate_contour_holder(parts.contour, holder_contour),
            holder_regions, estimate_region_holder(parts.images, parts.mask, holder_regions))


CASES = [(alpha, convention) for convention in ("holder", "paper-code")
         for alpha in (1.5, 2.0, 3.0)]


@pytest.mark.parametrize("alpha,convention", CASES)
def test_holder_exponents_recovered(alpha, convention):
    # 24 images of 256² leave thousands of clean coefficients at levels 1–3 per region and
    # 24 contours of 256 samples; the estimates land within ±0.06 (seeds 0–4), inside ±0.3.
    declared_c, found_c, declared_r, found_r = _estimates(alpha, convention, "sharp", 24, 256, 0)
    assert abs(found_c - declared_c) < TOL, (declared_c, found_c)
    assert abs(found_r - declared_r) < TOL, (declared_r, found_r)


@pytest.mark.slow
@pytest.mark.parametrize("alpha,convention", CASES)
@pytest.mark.parametrize("edge", ["sharp", "antialias", "box2"])
def test_holder_exponents_recovered_large(alpha, convention, edge):
    # 512² images: one more level for each estimate (contour 5, regions 4), anti-aliased too.
    parts = calpha_components(12, 512, alpha, convention=convention, edge=edge,
                              rng=np.random.default_rng(1))
    declared_c, declared_r = holder_exponents(alpha, None, convention)
    found_c = estimate_contour_holder(parts.contour, declared_c, levels=5)
    found_r = estimate_region_holder(parts.images, parts.mask, declared_r, levels=4)
    assert abs(found_c - declared_c) < TOL, (declared_c, found_c)
    assert abs(found_r - declared_r) < TOL, (declared_r, found_r)


def test_conventions_differ_by_the_caution():
    # SCIENCE.md §5: the public code's |k|^-α gives Hölder α − ½ (contour), α − 1 (regions).
    assert filter_exponents(2.0, 3.0, "paper-code") == (2.0, 3.0)
    assert filter_exponents(2.0, 3.0, "holder") == (2.5, 4.0)
    assert holder_exponents(2.0, 3.0, "paper-code") == (1.5, 2.0)
    assert holder_exponents(2.0, 3.0, "holder") == (2.0, 3.0)
    assert holder_exponents(2.0, None, "holder") == (2.0, 2.0)


def test_paper_code_regions_are_rougher_than_holder():
    # Same seed, same α: only the exponents differ, and the paper-code regions really are a
    # full Hölder unit rougher (the estimator tells the two conventions apart).
    holder = _estimates(2.0, "holder", "sharp", 8, 256, 3)
    paper = _estimates(2.0, "paper-code", "sharp", 8, 256, 3)
    assert holder[3] - paper[3] == pytest.approx(1.0, abs=0.2)
    assert holder[1] - paper[1] == pytest.approx(0.5, abs=0.25)


def test_same_seed_same_images_and_prefix_stability():
    a = calpha_images(6, 40, 2.0, rng=np.random.default_rng(7))
    b = calpha_images(6, 40, 2.0, rng=np.random.default_rng(7))
    c = calpha_images(6, 40, 2.0, rng=np.random.default_rng(8))
    first = calpha_images(2, 40, 2.0, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.array_equal(a[:2], first)


@pytest.mark.parametrize("size", [17, 40, 64])
@pytest.mark.parametrize("edge", ["sharp", "antialias", "box2"])
@pytest.mark.parametrize("convention", ["holder", "paper-code"])
def test_shape_dtype_and_range(size, edge, convention):
    x = calpha_images(5, size, 1.5, alpha_regions=3.0, convention=convention, edge=edge,
                      rng=np.random.default_rng(0))
    assert x.shape == (5, size, size) and x.dtype == np.float64
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_an_edge_exists_between_separated_grey_ranges():
    parts = calpha_components(20, 64, 2.0, rng=np.random.default_rng(1))
    for lower, upper, bright in zip(parts.lower, parts.upper, parts.lower_is_bright):
        dark_field, bright_field = (upper, lower) if bright else (lower, upper)
        assert dark_field.max() <= bright_field.min()
        assert dark_field.min() == pytest.approx(0.0) and bright_field.max() == pytest.approx(1.0)
    # Both coin outcomes occur, and the sharp mask is the region below the contour.
    assert 0 < parts.lower_is_bright.sum() < 20
    rows = np.arange(64)[None, :, None] + 0.5
    assert np.array_equal(parts.mask, (rows >= parts.contour[:, None, :]).astype(float))
    picked = np.where(parts.mask == 1, parts.lower, parts.upper)
    assert np.array_equal(parts.images, picked)


def test_antialiased_mask_is_the_area_below_the_contour():
    # Column sums of the exact vertical coverage equal size − c̄, with c̄ the contour averaged
    # over the column's sub-samples (where the contour stays inside the image).
    size = 48
    rng = np.random.default_rng(2)
    parts = calpha_components(6, size, 2.0, edge="antialias", rng=rng)
    offsets = (np.arange(8) + 0.5) / 8 - 0.5
    sub = evaluate_contour(parts.spectrum, offsets)
    assert np.allclose(evaluate_contour(parts.spectrum, np.zeros(1))[..., 0], parts.contour)
    inside = (sub.min(axis=-1) > 0) & (sub.max(axis=-1) < size)
    area = size - sub.mean(axis=-1)
    assert inside.mean() > 0.9
    assert np.allclose(parts.mask.sum(axis=1)[inside], area[inside], atol=1e-9)
    assert np.any((parts.mask > 0) & (parts.mask < 1))


def test_dataset_plugin_and_declarations():
    registered = []
    gahb_register_image_classes(registered.append)
    (record,) = registered
    assert record.name == "calpha"
    assert dict(record.params) == {"alpha": 2.0, "alpha_regions": None, "convention": "holder",
                                   "edge": None, "grey_ranges": None}
    data = record.build(32, **record.params)
    assert isinstance(data, CAlphaDataset)
    train0, train1 = data.train_subset(4, 0, seed=0), data.train_subset(4, 1, seed=0)
    assert train0.shape == (4, 1, 32, 32) and train0.dtype == np.float32
    assert np.array_equal(train0, data.train_subset(4, 0, seed=0))
    assert not np.allclose(train0, train1)
    paper = CAlphaDataset(32, alpha=3.0, alpha_regions=2.0, convention="paper-code")
    declared = paper.declares()
    assert declared["convention"] == "paper-code"
    assert (declared["alpha"], declared["alpha_regions"]) == (3.0, 2.0)
    assert (declared["holder_contour"], declared["holder_regions"]) == (2.5, 1.0)
    assert (declared["edge"], declared["grey_ranges"]) == ("box2", "independent")  # the public code's
    assert (data.edge, data.grey_ranges) == ("sharp", "disjoint")


def test_dataset_chunks_do_not_change_the_images():
    data = CAlphaDataset(24, alpha=1.5)
    whole = data.test_set(7, seed=3)
    data.chunk = 3
    assert np.array_equal(whole, data.test_set(7, seed=3))


@pytest.mark.parametrize("kwargs,error", [
    ({"alpha": 0.0}, ValueError),
    ({"alpha": -1.0}, ValueError),
    ({"alpha": "2"}, TypeError),
    ({"alpha": 2.0, "alpha_regions": float("nan")}, ValueError),
    ({"alpha": 2.0, "convention": "hoelder"}, ValueError),
    ({"alpha": 2.0, "rng": 3}, TypeError),
    ({"alpha": 2.0, "edge": "blur"}, ValueError),
    ({"alpha": 2.0, "grey_ranges": "overlap"}, ValueError),
])
def test_bad_parameters_raise(kwargs, error):
    alpha = kwargs.pop("alpha")
    with pytest.raises(error):
        calpha_images(2, 16, alpha, **kwargs)


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        calpha_images(0, 16, 2.0)
    with pytest.raises(ValueError):
        calpha_images(2, 3, 2.0)
    with pytest.raises(TypeError):
        calpha_images(2, 16.0, 2.0)
