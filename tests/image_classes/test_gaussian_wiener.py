"""The Gaussian calibration class: its declared Wiener optimum is exact.

* Monte-Carlo MSE of f* on fresh samples = the closed-form MSE*(σ) within 2%, per σ.
* Any perturbed linear filter (gain scaled, or the spectrum exponent misstated) does worse.
* The empirical power spectrum of the samples matches λ_k (so Cov x is the circulant with
  eigenvalues λ_k, the premise of the Wiener formula).
* Output-vs-input PSNR slope ≈ 1 − 2/γ in the middle σ range.
"""

from __future__ import annotations

import numpy as np
import pytest

from gahb_bench.image_classes.gaussian import (
    GaussianDataset,
    gahb_register_image_classes,
    power_spectrum,
    sample_gaussian_images,
    wiener_denoise,
    wiener_gain,
    wiener_mse,
    wiener_psnr_slope,
)

SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)


def _noisy(data: GaussianDataset, n: int, sigma: float, seed: int):
    rng = np.random.default_rng(seed)
    x = data.test_set(n, seed=seed).astype(np.float64)
    return x, x + sigma * rng.standard_normal(x.shape)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_wiener_monte_carlo_matches_formula(sigma):
    # 2000 images of 32²: the Monte-Carlo relative error is ~0.3% at σ ≤ 0.3 and ~1% at
    # σ = 1, where the DC and lowest modes dominate (measured here: 0.22% worst, seed 11).
    data = GaussianDataset(32, gamma=4.0, mean=0.5, std=0.15)
    x, y = _noisy(data, 2000, sigma, seed=11)
    mc = np.mean((data.optimal_denoiser(y, sigma) - x) ** 2)
    assert mc == pytest.approx(data.optimal_mse(sigma), rel=0.02)


@pytest.mark.parametrize("sigma", (0.03, 0.3))
def test_perturbed_filters_do_worse(sigma):
    data = GaussianDataset(32, gamma=4.0)
    x, y = _noisy(data, 500, sigma, seed=5)
    optimum = np.mean((data.optimal_denoiser(y, sigma) - x) ** 2)
    # Same noise, same images: every other linear filter must have a larger empirical MSE.
    for factor in (0.8, 1.25):
        over = data.mean + np.fft.ifft2(np.clip(factor * wiener_gain(data.spectrum, sigma), 0, 1)
                                        * np.fft.fft2(y - data.mean)).real
        assert np.mean((over - x) ** 2) > 1.01 * optimum
    wrong_gamma = power_spectrum((32, 32), 3.0, data.std)
    assert np.mean((wiener_denoise(y, wrong_gamma, sigma, data.mean) - x) ** 2) > 1.01 * optimum
    wrong_sigma = wiener_denoise(y, data.spectrum, 1.5 * sigma, data.mean)
    assert np.mean((wrong_sigma - x) ** 2) > 1.01 * optimum
    # And the identity (no denoising) pays the full σ².
    assert optimum < sigma**2


def test_empirical_spectrum_matches_lambda():
    shape = (16, 24)
    spectrum = power_spectrum(shape, 3.0, 0.2)
    x = sample_gaussian_images(4000, spectrum, mean=0.3, rng=np.random.default_rng(2))
    # Unitary Fourier coefficients of x − μ have E|X_k|² = λ_k; average over images.
    power = np.mean(np.abs(np.fft.fft2(x - 0.3)) ** 2, axis=0) / np.prod(shape)
    # Each entry averages 4000 exponential-like variables: ~1.6% std (2.2% for the real modes).
    assert np.allclose(power / spectrum, 1.0, atol=0.1)
    assert np.mean(power / spectrum) == pytest.approx(1.0, abs=0.01)
    # The pixel variance is the documented std², the mean μ, and covariance is stationary.
    assert spectrum.mean() == pytest.approx(0.2**2)
    assert x.std() == pytest.approx(0.2, rel=0.02)
    assert x.mean() == pytest.approx(0.3, abs=0.005)
    lag = np.mean((x - 0.3) * np.roll(x - 0.3, 1, axis=-1))
    expected_lag = np.fft.ifft2(spectrum).real[0, 1]  # circulant covariance at lag (0, 1)
    assert lag == pytest.approx(expected_lag, rel=0.05)


@pytest.mark.parametrize("gamma", (4.0, 6.0, 8.0))
def test_wiener_psnr_slope_formula(gamma):
    # Exact MSE* at 80², least squares of PSNR_out on PSNR_in for σ ∈ [0.01, 0.1]:
    # 0.529, 0.667, 0.750 for γ = 4, 6, 8 (the finite grid bends γ = 4 slightly upwards).
    spectrum = power_spectrum((80, 80), gamma, 0.15)
    sigmas = np.geomspace(0.01, 0.1, 9)
    slope = np.polyfit(-20 * np.log10(sigmas), -10 * np.log10(wiener_mse(spectrum, sigmas)), 1)[0]
    assert slope == pytest.approx(wiener_psnr_slope(gamma), abs=0.05)


def test_wiener_psnr_slope_monte_carlo():
    data = GaussianDataset(32, gamma=6.0)
    sigmas = np.geomspace(0.01, 0.1, 5)
    mse = [np.mean((data.optimal_denoiser(y, s) - x) ** 2)
           for s in sigmas for x, y in [_noisy(data, 200, s, seed=int(1000 * s))]]
    slope = np.polyfit(-20 * np.log10(sigmas), -10 * np.log10(mse), 1)[0]
    assert slope == pytest.approx(1 - 2 / 6.0, abs=0.05)


def test_mse_limits_and_per_image_sigma():
    data = GaussianDataset(24, gamma=4.0, std=0.1)
    # σ → 0: MSE* ≈ σ² (nothing to remove); σ → ∞: MSE* → the pixel variance std².
    assert data.optimal_mse(1e-5) == pytest.approx(1e-10, rel=1e-3)
    assert data.optimal_mse(1e3) == pytest.approx(0.1**2, rel=1e-4)
    assert np.allclose(data.optimal_mse(np.array([0.05, 0.2])),
                       [data.optimal_mse(0.05), data.optimal_mse(0.2)])
    x, y = _noisy(data, 3, 0.1, seed=0)
    per_image = data.optimal_denoiser(y, np.array([0.05, 0.1, 0.2]))
    for i, s in enumerate((0.05, 0.1, 0.2)):
        assert np.allclose(per_image[i], data.optimal_denoiser(y[i:i + 1], s)[0])
    # σ = 0 returns y unchanged; a constant image at the mean is a fixed point.
    assert np.allclose(data.optimal_denoiser(y, 0.0), y)
    flat = np.full((1, 1, 24, 24), data.mean)
    assert np.allclose(data.optimal_denoiser(flat, 0.3), flat)


def test_dataset_contract_and_plugin():
    registered = []
    gahb_register_image_classes(registered.append)
    (record,) = registered
    assert record.name == "gaussian"
    data = record.build(16, **record.params)
    assert isinstance(data, GaussianDataset)
    declared = data.declares()
    assert declared["optimum"] == "exact" and declared["clipped"] is False
    assert declared["gamma"] == record.params["gamma"]
    a, b = data.train_subset(5, 0, seed=1), data.train_subset(5, 1, seed=1)
    assert a.shape == (5, 1, 16, 16) and a.dtype == np.float32
    assert np.array_equal(a, data.train_subset(5, 0, seed=1)) and not np.allclose(a, b)
    # Not clipped: with std large enough, values leave [0, 1].
    wide = GaussianDataset(16, std=0.5).test_set(20, seed=0)
    assert wide.min() < 0.0 and wide.max() > 1.0


def test_same_seed_same_images_and_prefix():
    spectrum = power_spectrum((8, 8), 4.0, 0.1)
    a = sample_gaussian_images(5, spectrum, rng=np.random.default_rng(3))
    b = sample_gaussian_images(2, spectrum, rng=np.random.default_rng(3))
    assert np.array_equal(a[:2], b)


@pytest.mark.parametrize("call,error", [
    (lambda: power_spectrum((8, 8), 0.0, 0.1), ValueError),
    (lambda: power_spectrum((8, 8), 4.0, -1.0), ValueError),
    (lambda: power_spectrum((8,), 4.0, 0.1), ValueError),
    (lambda: GaussianDataset(16, gamma="4"), TypeError),
    (lambda: GaussianDataset(16).optimal_denoiser(np.zeros((2, 16, 16)), 0.1), ValueError),
    (lambda: GaussianDataset(16).optimal_denoiser(np.zeros((2, 1, 16, 16)), [0.1] * 3), ValueError),
    (lambda: GaussianDataset(16).optimal_mse(-0.1), ValueError),
    (lambda: wiener_denoise(np.zeros((8, 9)), power_spectrum((8, 8), 4.0, 0.1), 0.1), ValueError),
])
def test_bad_input_raises(call, error):
    with pytest.raises(error):
        call()
