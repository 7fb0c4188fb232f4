"""Wavelet transform helpers and the wavelet-thresholding baseline."""

import numpy as np
import pytest

from gahb_bench.baselines.wavelet import (
    default_levels,
    hard_threshold,
    soft_threshold,
    wavelet_denoise,
    wavelet_forward,
    wavelet_inverse,
)


def _psnr(x, y):
    return -10 * np.log10(np.mean((x - y) ** 2))


@pytest.mark.parametrize("size,wavelet", [(32, "db4"), (80, "sym4"), (16, "haar")])
def test_forward_is_orthonormal(size, wavelet):
    x = np.random.default_rng(0).standard_normal((3, size, size))
    c, slices = wavelet_forward(x, wavelet)
    assert c.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(c, axis=(1, 2)), np.linalg.norm(x, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(wavelet_inverse(c, slices, wavelet), x, atol=1e-12)
    # A single image gives the same coefficients as its slot in a batch.
    c0, _ = wavelet_forward(x[1], wavelet)
    np.testing.assert_allclose(c0, c[1], atol=1e-14)


def test_orthonormal_basis_matrix():
    # Columns of W (coefficients of the unit images) are orthonormal: W Wᵀ = I.
    size = 8
    eye = np.eye(size * size).reshape(-1, size, size)
    c, _ = wavelet_forward(eye, "db2", levels=2)
    w = c.reshape(size * size, -1)
    np.testing.assert_allclose(w @ w.T, np.eye(size * size), atol=1e-12)


def test_biorthogonal_wavelet_is_rejected():
    x = np.zeros((16, 16))
    with pytest.raises(ValueError, match="not orthogonal"):
        wavelet_forward(x, "bior4.4")
    with pytest.raises(ValueError, match="not orthogonal"):
        wavelet_denoise(x, 0.1, wavelet="bior2.2")
    with pytest.raises(ValueError, match="unknown"):
        wavelet_forward(x, "no-such-wavelet")


def test_threshold_rules_known_values():
    b = np.array([-3.0, -1.0, 0.5, 2.0, 4.0])
    np.testing.assert_array_equal(hard_threshold(b, 1.5), [-3.0, 0.0, 0.0, 2.0, 4.0])
    np.testing.assert_array_equal(soft_threshold(b, 1.5), [-1.5, 0.0, 0.0, 0.5, 2.5])


def test_zero_threshold_is_identity_and_huge_threshold_keeps_coarse_only():
    rng = np.random.default_rng(1)
    y = rng.random((2, 32, 32))
    np.testing.assert_allclose(wavelet_denoise(y, 0.1, threshold=0.0), y, atol=1e-12)
    out = wavelet_denoise(y, 1e6, mode="soft")
    c, slices = wavelet_forward(y)
    coarse = np.zeros_like(c)
    a = (slice(None),) + tuple(slices[0])
    coarse[a] = c[a]
    np.testing.assert_allclose(out, wavelet_inverse(coarse, slices), atol=1e-12)
    # Coarse approximation of a 32×32 image at 3 levels is 4×4: its mean is preserved.
    np.testing.assert_allclose(out.mean(axis=(1, 2)), y.mean(axis=(1, 2)), atol=1e-12)


def test_denoising_improves_psnr_and_sigma_per_image():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    x = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)] * 2)
    sigma = np.array([0.05, 0.2])
    y = x + sigma[:, None, None] * rng.standard_normal(x.shape)
    for mode in ("hard", "soft"):
        out = wavelet_denoise(y, sigma, mode=mode)
        for i in range(2):
            assert _psnr(out[i], x[i]) > _psnr(y[i], x[i]) + 3.0
    # Per-image sigma equals denoising each image alone.
    np.testing.assert_allclose(wavelet_denoise(y, sigma)[1], wavelet_denoise(y[1], 0.2), atol=1e-12)


def test_default_levels():
    assert default_levels(80) == 4 and default_levels(32) == 3 and default_levels(16) == 2


def test_bad_inputs():
    with pytest.raises(ValueError):
        wavelet_denoise(np.zeros((2, 2, 16, 16)), 0.1)
    with pytest.raises(ValueError):
        wavelet_denoise(np.zeros((16, 16)), -0.1)
    with pytest.raises(ValueError):
        wavelet_denoise(np.zeros((16, 16)), 0.1, mode="median")
    with pytest.raises(ValueError):
        wavelet_denoise(np.zeros((2, 16, 16)), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        wavelet_forward(np.zeros((20, 20)), levels=3)
    with pytest.raises(TypeError):
        wavelet_denoise(np.array([["a"]]), 0.1)
