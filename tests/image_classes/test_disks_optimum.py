"""The optimal (MMSE) denoiser of the disks class: E[x | y] by importance sampling."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gahb_bench.image_classes.disks import DisksDataset, render_disks
from gahb_bench.image_classes.disks_optimum import (
    disks_ml_estimate,
    disks_posterior,
    truncated_normal_box_moments,
)

SIZE = 16


def _noisy(n, sigma, seed=5, size=SIZE):
    ds = DisksDataset(size)
    x = ds.test_set(n, seed)[:, 0].astype(np.float64)
    z = sigma * np.random.default_rng(seed + 100).standard_normal(x.shape)
    return ds, x, z


def test_box_moments_match_scipy_and_the_untruncated_limit():
    mean, cov = np.array([0.9, 0.15]), np.array([[0.04, -0.01], [-0.01, 0.03]])
    log_mass, tmean, tcov = truncated_normal_box_moments(mean, cov)
    dist = multivariate_normal(mean, cov)
    box = dist.cdf([1, 1]) - dist.cdf([0, 1]) - dist.cdf([1, 0]) + dist.cdf([0, 0])
    assert abs(np.exp(log_mass) / box - 1.0) < 1e-4
    # The truncated mean moves inside the box, towards its centre.
    assert tmean[0] < mean[0] and tmean[1] > mean[1]
    assert np.all(np.linalg.eigvalsh(tcov) > 0) and np.all(np.diag(tcov) < np.diag(cov))
    # Far inside the box the truncation is invisible: the moments are the Gaussian's.
    small = np.array([[1e-6, 2e-7], [2e-7, 3e-6]])
    log_mass, tmean, tcov = truncated_normal_box_moments(np.array([0.4, 0.6]), small)
    assert abs(log_mass) < 1e-9
    np.testing.assert_allclose(tmean, [0.4, 0.6], atol=1e-10)
    np.testing.assert_allclose(tcov, small, rtol=1e-6)


def test_ml_estimate_recovers_the_latents_at_low_noise():
    ds, x, z = _noisy(6, 1e-3)
    latents = ds.test_latents(6, 5)
    ml = disks_ml_estimate(x + z)
    strong = np.abs(latents[:, 3] - latents[:, 4]) > 0.1
    assert np.abs(ml - latents)[strong].max() < 0.02


def test_small_sigma_mse_is_the_tangent_projection_5_sigma2():
    """σ → 0: f*(y) − x → P_T z, so E‖f*(y) − x‖² → 5σ² per image (and tr J* → 5)."""
    sigma, n = 0.01, 40
    ds, x, z = _noisy(n, sigma)
    post = disks_posterior(x + z, sigma, n_samples=2048)
    err = np.sum((post.mean - x) ** 2, axis=(1, 2))
    u = ds.tangent_basis(ds.test_latents(n, 5)).reshape(n, 5, -1)
    tangent_part = np.sum(np.einsum("nkd,nd->nk", u, z.reshape(n, -1)) ** 2, axis=1)
    assert abs(err.mean() / (5 * sigma**2) - 1.0) < 0.10
    # The same noise projected on the tangent space: the paired ratio is much tighter. The limit
    # is not uniform in the contrast: a disk with |fg − bg| ~ σ is invisible (its position is
    # unidentifiable), so the paired check keeps the images with contrast ≥ 10σ.
    latents = ds.test_latents(n, 5)
    visible = np.abs(latents[:, 3] - latents[:, 4]) > 10 * sigma
    assert visible.sum() > 30
    assert abs(err[visible].sum() / tangent_part[visible].sum() - 1.0) < 0.05
    assert abs(post.trace_jacobian.mean() / 5.0 - 1.0) < 0.03
    # The Monte-Carlo error is small against the posterior spread σ√tr J*.
    assert np.max(post.mc_error / (sigma * np.sqrt(post.trace_jacobian))) < 0.1


def test_large_sigma_tends_to_the_class_mean():
    """σ → ∞: E[x | y] → E[x] (= ½ everywhere by the symmetry fg ↔ bg)."""
    ds = DisksDataset(SIZE)
    class_mean = ds.test_set(20000, seed=9)[:, 0].astype(np.float64).mean(axis=0)
    assert np.abs(class_mean - 0.5).max() < 0.01
    x = ds.test_set(6, seed=1)[:, 0].astype(np.float64)
    noise = np.random.default_rng(2).standard_normal(x.shape)
    distance = []
    for sigma in (2.0, 20.0, 200.0):
        post = disks_posterior(x + sigma * noise, sigma, n_samples=1024)
        distance.append(np.sqrt(np.mean((post.mean - class_mean) ** 2)))
    assert distance[0] > distance[1] > distance[2]
    assert distance[2] < 0.01
    # Far from the identity: the noisy image itself is ~σ away.
    assert np.sqrt(np.mean((post.mean - (x + 200.0 * noise)) ** 2)) > 100


def test_moderate_sigma_beats_identity_class_mean_and_tangent_projection():
    """The MMSE is a real lower bound on any denoiser of y: the identity, the class mean, and the
    maximum-likelihood projection on the manifold g(θ̂) (the tangent projection at θ̂)."""
    sigma, n = 0.3, 40
    ds, x, z = _noisy(n, sigma)
    y = x + z
    post = disks_posterior(y, sigma, n_samples=2048)
    mmse = np.sum((post.mean - x) ** 2, axis=(1, 2)).mean()
    projection = np.sum((render_disks(post.ml_latents, SIZE) - x) ** 2, axis=(1, 2)).mean()
    identity = np.sum(z**2, axis=(1, 2)).mean()
    class_mean = np.sum((0.5 - x) ** 2, axis=(1, 2)).mean()
    assert mmse < 0.85 * projection
    assert mmse < 0.05 * identity
    assert mmse < 0.1 * class_mean
    # Self-consistency: E‖f*(y) − x‖² = σ² E[tr J*(y)] (up to the sampling of 40 images).
    assert abs(mmse / (sigma**2 * post.trace_jacobian.mean()) - 1.0) < 0.25


def test_jacobian_is_the_posterior_covariance_over_sigma2():
    ds = DisksDataset(12)
    x = ds.test_set(2, seed=0)[:, 0].astype(np.float64)
    sigma = 0.05
    y = x + sigma * np.random.default_rng(0).standard_normal(x.shape)
    post = disks_posterior(y, sigma, n_samples=512, jacobian=True)
    jac = post.jacobian
    np.testing.assert_allclose(jac, jac.transpose(0, 2, 1), atol=1e-12)
    assert np.linalg.eigvalsh(jac).min(axis=1).min() > -1e-9
    np.testing.assert_allclose(np.trace(jac, axis1=1, axis2=2), post.trace_jacobian, rtol=1e-9)
    # Its dominant eigenvectors span the tangent space at small noise: 5 eigenvalues near 1.
    top = np.sort(np.linalg.eigvalsh(jac[0]))[::-1]
    assert top[5] < 0.2 < 0.5 < top[4]


def test_denoiser_contract_and_determinism():
    ds = DisksDataset(SIZE, optimum_samples=256)
    y = ds.test_set(2, seed=0) + 0.1 * np.random.default_rng(0).standard_normal((2, 1, SIZE, SIZE)).astype(np.float32)
    out = ds.optimal_denoiser(y, 0.1)
    assert out.shape == y.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, ds.optimal_denoiser(y, 0.1))
    np.testing.assert_array_equal(out, ds.optimal_denoiser(y, np.array([0.1, 0.1])))
    declared = ds.declares()
    assert declared["optimum"] == "monte-carlo" and declared["dimension"] == 5
    with pytest.raises(ValueError, match="sigma"):
        ds.optimal_denoiser(y, 0.0)
    with pytest.raises(ValueError, match="shape"):
        ds.optimal_denoiser(y[:, 0], 0.1)


@pytest.mark.slow
def test_trace_of_the_optimal_jacobian_at_24_pixels():
    """SCIENCE.md §5 independent check at 24×24: tr J* = 4.86, 5.07, 5.00 at σ = 0.1, 0.03, 0.01
    (its rendering and test images differ from ours, so the tolerance is ±0.2)."""
    ds, x, z0 = _noisy(40, 1.0, seed=0, size=24)
    for sigma, reference in ((0.1, 4.86), (0.03, 5.07), (0.01, 5.00)):
        post = disks_posterior(x + sigma * z0, sigma)
        assert abs(post.trace_jacobian.mean() - reference) < 0.2
