"""PSNR arithmetic and denoising curves against known values."""

import numpy as np
import pytest

from gahb_bench.metrics.psnr import (denoising_curve, input_psnr, mse_per_image, psnr_from_mse, psnr_slope,
                                     sigma_grid)


def test_known_values():
    assert psnr_from_mse(1e-2) == pytest.approx(20.0)
    assert input_psnr(0.1) == pytest.approx(20.0)
    np.testing.assert_allclose(mse_per_image(np.zeros((2, 1, 2, 2)), np.full((2, 1, 2, 2), 0.5)), [0.25, 0.25])
    np.testing.assert_allclose(input_psnr(sigma_grid(0.01, 1.0, 3)), [40.0, 20.0, 0.0])


def test_identity_denoiser_gives_input_psnr():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(200, 1, 16, 16))
    sigmas = np.array([0.05, 0.2])
    psnr, mse = denoising_curve(lambda y: y, images, sigmas, rng)
    np.testing.assert_allclose(mse, sigmas**2, rtol=0.01)
    # Mean of per-image PSNR: close to input PSNR (Jensen makes it slightly larger).
    np.testing.assert_allclose(psnr, input_psnr(sigmas), atol=0.05)


def test_halving_the_noise_gains_6_db():
    rng = np.random.default_rng(1)
    zeros = np.zeros((50, 1, 32, 32))
    # For x = 0, f(y) = y/2 has MSE σ²/4: exactly 6.02 dB above the identity.
    psnr, _ = denoising_curve(lambda y: y / 2, zeros, np.array([0.1]), rng, min_evaluations=200)
    assert psnr[0] == pytest.approx(20 + 20 * np.log10(2), abs=0.05)


def test_min_evaluations_repeats_small_sets():
    seen = []
    denoising_curve(lambda y: seen.append(len(y)) or y, np.zeros((3, 1, 4, 4)), np.array([0.1]),
                    np.random.default_rng(0), min_evaluations=64)
    assert seen == [66]


def test_slope_of_a_power_law():
    sigmas = sigma_grid(0.01, 1, 9)
    out = input_psnr(sigmas) * 0.75 + 3.0
    assert psnr_slope(sigmas, out, lo=0.02, hi=0.5) == pytest.approx(0.75)


def test_bootstrap_slope_interval_covers_the_true_slope_and_shrinks_with_images():
    from gahb_bench.metrics.psnr import psnr_slope_bootstrap

    sigmas = np.geomspace(0.02, 0.5, 8)
    rng = np.random.default_rng(0)

    def draws(n):
        # Each image has its own offset and a per-image slope around 0.7: the mean slope is 0.7.
        slopes = 0.7 + 0.1 * rng.standard_normal((n, 1))
        return 10 + 3 * rng.standard_normal((n, 1)) + slopes * input_psnr(sigmas)[None]

    small, large = draws(50), draws(2000)
    s, lo, hi = psnr_slope_bootstrap(sigmas, small, n_boot=500)
    assert lo < 0.7 < hi and lo < s < hi
    s2, lo2, hi2 = psnr_slope_bootstrap(sigmas, large, n_boot=500)
    assert lo2 < 0.7 < hi2
    assert (hi2 - lo2) < 0.35 * (hi - lo)  # the interval shrinks like 1/sqrt(n): sqrt(50/2000) = 0.16
    # Identical images: no spread, the interval collapses onto the slope.
    same = np.repeat(small[:1], 20, axis=0)
    s3, lo3, hi3 = psnr_slope_bootstrap(sigmas, same, n_boot=50)
    assert lo3 == pytest.approx(s3) and hi3 == pytest.approx(s3)
    with pytest.raises(ValueError, match="n_sigma"):
        psnr_slope_bootstrap(sigmas, small[:, :3])
