"""The gaussian, local and equivariant-local references against direct float64 formulas and the
identities their definitions imply."""

import numpy as np
import pytest

from gahb_bench.image_classes.gaussian import GaussianDataset
from gahb_bench.references.empirical import empirical_denoise
from gahb_bench.references.gaussian import fit_gaussian, gaussian_denoise
from gahb_bench.references.local import (box_sum, equivariant_local_denoise, fit_patches,
                                         local_denoise)


def _softmax_average(dist2, values, sigma):
    logits = -dist2 / (2 * sigma**2)
    w = np.exp(logits - logits.max())
    return (w / w.sum()) @ values


def _padded_patch(img, r, c, size):
    half = size // 2
    pad = np.pad(img, ((0, 0), (half, half), (half, half)))
    return pad[:, r:r + size, c:c + size]


def _border_class(pos, n, size):
    """Kamb & Ganguli's matching rule for zero padding: near a border, the same offset; inside,
    any interior position."""
    half = size // 2
    return pos if pos < half or pos >= n - half else -1


def _direct_local(train, y, sigma, size, equivariant):
    """Pixel by pixel, from the definitions in gahb_bench.references.local (float64)."""
    n, ch, h, w = train.shape
    out = np.empty(y.shape)
    for b in range(len(y)):
        for r in range(h):
            for c in range(w):
                q = _padded_patch(y[b], r, c, size)
                locs = [(rr, cc) for rr in range(h) for cc in range(w)
                        if _border_class(rr, h, size) == _border_class(r, h, size)
                        and _border_class(cc, w, size) == _border_class(c, w, size)] if equivariant else [(r, c)]
                d2, centres = [], []
                for i in range(n):
                    for rr, cc in locs:
                        d2.append(np.sum((q - _padded_patch(train[i], rr, cc, size)) ** 2))
                        centres.append(train[i, :, rr, cc])
                out[b, :, r, c] = _softmax_average(np.array(d2), np.array(centres), sigma)
    return out


@pytest.mark.parametrize("equivariant", [False, True])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_local_references_equal_the_direct_formula(equivariant, size):
    rng = np.random.default_rng(0)
    train = rng.random((5, 2, 4, 5))
    y = train[:2] + 0.3 * rng.standard_normal((2, 2, 4, 5))
    if equivariant:
        got = equivariant_local_denoise(fit_patches(train, size), y, 0.3)
    else:
        got = local_denoise(fit_patches(train, size), y, 0.3)
    np.testing.assert_allclose(got, _direct_local(train, y, 0.3, size, equivariant), atol=1e-12)


def test_local_with_one_pixel_is_the_per_pixel_posterior_mean():
    rng = np.random.default_rng(1)
    train = rng.random((7, 1, 3, 3))
    y = rng.random((1, 1, 3, 3))
    got = local_denoise(fit_patches(train, 1), y, 0.2)
    for r in range(3):
        for c in range(3):
            vals = train[:, 0, r, c]
            expected = _softmax_average((y[0, 0, r, c] - vals) ** 2, vals, 0.2)
            assert got[0, 0, r, c] == pytest.approx(expected, abs=1e-12)


def test_local_with_patches_covering_the_image_is_the_empirical_optimum():
    rng = np.random.default_rng(2)
    train = rng.random((9, 1, 6, 6))
    y = train[:3] + 0.2 * rng.standard_normal((3, 1, 6, 6))
    got = local_denoise(fit_patches(train, 11), y, 0.2)
    np.testing.assert_allclose(got, empirical_denoise(train, y, 0.2), atol=1e-10)


def test_equivariant_local_is_local_when_every_pixel_is_a_border_and_differs_inside():
    """P > size: every pixel is its own border class, so ELS is LS, and at P ≥ 2·size − 1 the
    empirical optimum; with an interior (P = 3 on 6×6) pooling locations changes the answer."""
    rng = np.random.default_rng(3)
    train = rng.random((6, 1, 6, 6))
    y = train[:3] + 0.3 * rng.standard_normal((3, 1, 6, 6))
    np.testing.assert_allclose(equivariant_local_denoise(fit_patches(train, 7), y, 0.3),
                               local_denoise(fit_patches(train, 7), y, 0.3), atol=1e-12)
    np.testing.assert_allclose(equivariant_local_denoise(fit_patches(train, 11), y, 0.3),
                               empirical_denoise(train, y, 0.3), atol=1e-10)
    els = equivariant_local_denoise(fit_patches(train, 3), y, 0.3)
    ls = local_denoise(fit_patches(train, 3), y, 0.3)
    for r, c in ((0, 0), (0, 5), (5, 0), (5, 5)):  # a corner is a class of its own
        np.testing.assert_allclose(els[..., r, c], ls[..., r, c], atol=1e-12)
    assert np.abs(els[..., 1:5, 1:5] - ls[..., 1:5, 1:5]).max() > 1e-3


def test_chunked_accumulation_equals_one_block(monkeypatch):
    """The running log-sum-exp over chunks of training images is exact: tiny blocks, same result."""
    import gahb_bench.references.local as local

    rng = np.random.default_rng(6)
    train = rng.random((11, 2, 5, 4))
    y = train[:3] + 0.1 * rng.standard_normal((3, 2, 5, 4))
    whole = (local_denoise(fit_patches(train, 3), y, 0.1), equivariant_local_denoise(fit_patches(train, 3), y, 0.1))
    monkeypatch.setattr(local, "BLOCK", 40)
    chunked = (local_denoise(fit_patches(train, 3), y, 0.1), equivariant_local_denoise(fit_patches(train, 3), y, 0.1))
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, atol=1e-13)


def test_box_sum_is_the_zero_padded_window_sum():
    import torch

    z = np.arange(20.0).reshape(1, 4, 5)
    got = box_sum(torch.from_numpy(z), 3).numpy()
    pad = np.pad(z[0], 1)
    expected = np.array([[pad[r:r + 3, c:c + 3].sum() for c in range(5)] for r in range(4)])
    np.testing.assert_allclose(got[0], expected)


def test_gaussian_reference_equals_the_wiener_formula_and_the_class_optimum_with_many_images():
    rng = np.random.default_rng(4)
    train = rng.random((40, 1, 3, 3))
    y = rng.random((2, 1, 3, 3))
    flat = train.reshape(40, -1)
    mu, cov = flat.mean(0), np.cov(flat.T, bias=True)
    expected = mu + (y.reshape(2, -1) - mu) @ np.linalg.solve(cov + 0.3**2 * np.eye(9), cov).T
    np.testing.assert_allclose(gaussian_denoise(fit_gaussian(train), y, 0.3).reshape(2, -1), expected, atol=1e-12)

    # On the gaussian class, fitted on many images, it approaches the class's exact Wiener filter.
    size, sigma = 8, 0.2
    ds = GaussianDataset(size)
    clean = ds.test_set(8, seed=0)
    noisy = clean + sigma * np.random.default_rng(5).standard_normal(clean.shape)
    exact = ds.optimal_denoiser(noisy, sigma)
    fitted = gaussian_denoise(fit_gaussian(ds.train_subset(20000, subset=0, seed=0)), noisy, sigma)
    rel = np.linalg.norm(fitted - exact) / np.linalg.norm(exact - exact.mean())
    assert rel < 0.05
    small = gaussian_denoise(fit_gaussian(ds.train_subset(50, subset=0, seed=0)), noisy, sigma)
    assert np.linalg.norm(small - exact) > 2 * np.linalg.norm(fitted - exact)


def test_references_refuse_bad_input():
    rng = np.random.default_rng(0)
    train = rng.random((3, 1, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        fit_patches(train, 4)
    with pytest.raises(ValueError, match="at most 8 pixels"):
        fit_gaussian(train, max_dim=8)
    with pytest.raises(ValueError, match="sigma must be positive"):
        local_denoise(fit_patches(train, 3), train, 0.0)
    with pytest.raises(ValueError, match=r"\(B, 1, 4, 4\)"):
        equivariant_local_denoise(fit_patches(train, 3), rng.random((2, 1, 5, 5)), 0.1)
    with pytest.raises(ValueError, match="non-empty batch"):
        fit_gaussian(np.zeros((0, 1, 4, 4)))
