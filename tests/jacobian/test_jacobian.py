"""The Jacobian module against denoisers whose Jacobian is known: a Wiener filter, an orthogonal
projection, and the public code's row-by-row autograd loop on real networks."""

import numpy as np
import pytest
import torch

from gahb_bench import jacobian as jac
from gahb_bench.architectures.bfcnn import build_bfcnn
from gahb_bench.architectures.unet import build_unet
from gahb_bench.image_classes.gaussian import GaussianDataset, wiener_gain


class Wiener(torch.nn.Module):
    """f(y) = μ + ifft2(g · fft2(y − μ)): the exact optimum of the gaussian class at one σ."""

    def __init__(self, gain: np.ndarray, mean: float):
        super().__init__()
        self.register_buffer("gain", torch.from_numpy(gain.astype(np.float32)))
        self.mean = mean

    def forward(self, y):
        return self.mean + torch.fft.ifft2(self.gain * torch.fft.fft2(y - self.mean)).real


class Projection(torch.nn.Module):
    """f(y) = U Uᵀ y: the orthogonal projection on span(U), U (D, k) orthonormal."""

    def __init__(self, basis: np.ndarray):
        super().__init__()
        self.register_buffer("basis", torch.from_numpy(basis.astype(np.float32)))

    def forward(self, y):
        flat = y.flatten(1)
        return ((flat @ self.basis) @ self.basis.T).reshape(y.shape)


class BiasedCNN(torch.nn.Module):
    """A small convolutional net with additive constants: not homogeneous, not symmetric."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Tanh(),
                                       torch.nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, y):
        return y - self.net(y)


def _points(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, size, size)).astype(np.float32)


def test_jacobian_of_the_wiener_filter_is_its_known_matrix():
    data = GaussianDataset(8, gamma=4.0)
    sigma = 0.1
    f = Wiener(wiener_gain(data.spectrum, sigma), data.mean)
    J = jac.jacobian(f, _points(2, 8), chunk_size=17)
    # Column j of the filter's matrix is its (linear) response to the j-th basis image.
    basis = np.eye(64).reshape(64, 8, 8)
    W = np.fft.ifft2(wiener_gain(data.spectrum, sigma) * np.fft.fft2(basis)).real.reshape(64, 64).T
    np.testing.assert_allclose(J[0], W, atol=2e-6)
    np.testing.assert_allclose(J[1], W, atol=2e-6)
    assert jac.asymmetry(J).max() < 1e-5  # the optimum's Jacobian is a covariance: symmetric
    np.testing.assert_allclose(np.trace(J[0]), wiener_gain(data.spectrum, sigma).sum(), rtol=1e-5)


def test_projection_eigenvalues_tangent_scores_and_matrix_free_agree():
    rng = np.random.default_rng(1)
    k, size = 5, 8
    basis, _ = np.linalg.qr(rng.standard_normal((size * size, k)))
    f = Projection(basis)
    y = _points(2, size)
    J = jac.jacobian(f, y)
    vals, vecs = jac.eigh_descending(J)
    np.testing.assert_allclose(vals[:, :k], 1.0, atol=1e-6)
    np.testing.assert_allclose(vals[:, k:], 0.0, atol=1e-6)
    tangent = basis.T.reshape(k, 1, size, size)
    assert jac.tangent_trace_fraction(J[0], tangent) == pytest.approx(1.0, abs=1e-6)
    assert jac.tangent_energy_fraction(J[0], tangent) == pytest.approx(1.0, abs=1e-6)
    assert np.trace(J[0]) == pytest.approx(k, abs=1e-5)
    np.testing.assert_allclose(jac.principal_angles(vecs[0][:, :k].T, tangent), 0.0, atol=1e-5)
    # An unrelated direction is at 90 degrees, and a tangent space off by one vector scores less.
    other = np.linalg.qr(np.c_[basis, rng.standard_normal(size * size)])[0][:, -1]
    assert jac.principal_angles(other.reshape(1, 1, size, size), tangent)[0] == pytest.approx(np.pi / 2)
    assert jac.tangent_trace_fraction(J[0], np.c_[basis[:, :-1], other].T) == pytest.approx((k - 1) / k, abs=1e-6)

    top, top_vecs, resid = jac.top_eigenpairs(f, y, k=k)
    np.testing.assert_allclose(top, vals[:, :k], atol=1e-6)
    assert resid.max() < 1e-5
    np.testing.assert_allclose(jac.principal_angles(top_vecs[0], tangent), 0.0, atol=1e-3)


@pytest.mark.parametrize("build", [lambda: build_unet(1, 8, init="unit-gain", width=8),
                                   lambda: build_bfcnn(1, 8, depth=4, width=8, init="unit-gain")])
def test_batched_jacobian_equals_the_row_by_row_autograd_loop(build):
    torch.manual_seed(0)
    f = build().eval()
    y = _points(3, 8, seed=2)
    J = jac.jacobian(f, y, chunk_size=10)
    for b in range(3):
        # The public code's way: torch.autograd on one image at a time.
        point = torch.from_numpy(y[b:b + 1])
        ref = torch.autograd.functional.jacobian(lambda x: f(x).flatten(), point).reshape(64, 64)
        np.testing.assert_allclose(J[b], ref.double().numpy(), atol=1e-5)


def test_top_eigenpairs_of_a_network_match_the_full_decomposition():
    torch.manual_seed(0)
    f = build_unet(1, 8, init="unit-gain", width=8)
    y = _points(2, 8, seed=4)
    vals, vecs = jac.eigh_descending(jac.jacobian(f, y))
    top, top_vecs, resid = jac.top_eigenpairs(f, y, k=6, tol=1e-6)
    np.testing.assert_allclose(top, vals[:, :6], rtol=1e-4, atol=1e-5)
    assert resid.max() < 1e-4 * np.abs(vals).max()
    # Each eigenvector agrees up to sign where its eigenvalue is separated from the next.
    gap = np.abs(np.diff(vals[0, :7]))
    for j in np.flatnonzero(gap[:6] > 1e-2):
        if j == 0 or gap[j - 1] > 1e-2:
            assert abs(top_vecs[0, j].ravel() @ vecs[0][:, j]) == pytest.approx(1.0, abs=1e-3)


def test_hutchinson_agrees_with_the_exact_trace_within_three_standard_errors():
    f = BiasedCNN()
    y = _points(4, 8, seed=5)
    exact = np.trace(jac.jacobian(f, y), axis1=1, axis2=2)
    estimate, se = jac.hutchinson_trace(f, y, n_probes=200, seed=1)
    assert (se > 0).all()
    assert (np.abs(estimate - exact) <= 3 * se).all(), (estimate, exact, se)
    # The estimator is not the exact trace by construction: with few probes it differs.
    few, _ = jac.hutchinson_trace(f, y, n_probes=4, seed=1)
    assert not np.allclose(few, exact, atol=1e-3)


def test_homogeneity_residual_is_zero_for_bias_free_networks_only():
    torch.manual_seed(0)
    y = _points(3, 8, seed=6)
    bias_free = build_bfcnn(1, 8, depth=4, width=8, init="unit-gain")
    r = jac.homogeneity_residual(bias_free, y)
    assert r.max() < 1e-5
    J = jac.jacobian(bias_free, y)
    np.testing.assert_allclose(jac.homogeneity_residual(bias_free, y, J), r, atol=1e-5)
    assert jac.homogeneity_residual(BiasedCNN(), y).min() > 1e-2


def test_sure_estimates_the_mse_of_the_wiener_filter_without_clean_images():
    data = GaussianDataset(16, gamma=4.0)
    sigma, n = 0.1, 400
    clean = data.test_set(n, seed=0)
    noisy = clean + sigma * np.random.default_rng(1).standard_normal(clean.shape).astype(np.float32)
    denoised = data.optimal_denoiser(noisy, sigma)
    trace = np.full(n, wiener_gain(data.spectrum, sigma).sum())
    sure = jac.sure_mse(noisy, denoised, trace, sigma)
    true = ((denoised - clean) ** 2).reshape(n, -1).mean(1)
    diff = sure - true
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(n)
    assert sure.mean() == pytest.approx(data.optimal_mse(sigma), rel=0.05)
    # A wrong trace (the identity's) is caught: SURE then misses by 2σ²(D − tr)/D.
    wrong = jac.sure_mse(noisy, denoised, np.full(n, 256.0), sigma)
    assert wrong.mean() - true.mean() > 10 * diff.std(ddof=1) / np.sqrt(n)


def test_kl_bound_is_zero_for_the_optimum_and_exact_for_a_known_integrand():
    sigmas = np.geomspace(0.01, 1, 9)
    total, bands = jac.kl_bound(sigmas, np.zeros(9))
    assert total == 0 and bands.shape == (8,)
    # Δ = c σ²: ∫ c σ² σ⁻³ dσ = c log(σmax / σmin), which the trapezoid in log σ gets exactly.
    total, bands = jac.kl_bound(sigmas[::-1], 0.3 * sigmas[::-1] ** 2)
    assert total == pytest.approx(0.3 * np.log(100))
    np.testing.assert_allclose(bands, 0.3 * np.log(100) / 8)
    with pytest.raises(ValueError, match="same length"):
        jac.kl_bound(sigmas, np.zeros(3))


def test_bad_input_is_refused_with_a_message():
    f = Projection(np.eye(64)[:, :2])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        jac.jacobian(f, np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="chunk_size"):
        jac.jacobian(f, _points(1, 8), chunk_size=0)
    with pytest.raises(ValueError, match="k must be"):
        jac.top_eigenpairs(f, _points(1, 8), k=64)
    with pytest.raises(ValueError, match="n_probes"):
        jac.hutchinson_trace(f, _points(1, 8), n_probes=1)


def test_a_training_model_is_evaluated_in_eval_mode_and_restored():
    torch.manual_seed(0)
    f = build_unet(1, 8, width=8)
    f.train()
    y = _points(2, 8)
    J = jac.jacobian(f, y)
    assert f.training
    # With batch statistics the two images would be coupled: each Jacobian equals its own alone.
    np.testing.assert_allclose(J[1], jac.jacobian(f, y[1:])[0], atol=1e-5)


def test_block_lanczos_finds_the_top_eigenpairs_of_a_known_spectrum():
    """A symmetric matrix with a cluster of 40 eigenvalues near 1 above a decaying tail: the top
    32 found matrix-free, within the tolerance, the vectors an orthonormal set of eigenvectors."""
    rng = np.random.default_rng(1)
    dim = 400
    U, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = np.r_[np.linspace(1.1, 0.9, 40), 0.9 * np.exp(-np.arange(dim - 40) / 40)]
    A = (U * lam) @ U.T
    calls = []

    def apply(V):
        calls.append(len(V))
        return V @ A

    vals, vecs, res = jac.block_lanczos(apply, dim, 32, tol=1e-8, block=8)
    np.testing.assert_allclose(vals, lam[:32], rtol=1e-10)
    assert res.max() <= 1e-8 * lam[0]
    np.testing.assert_allclose(vecs @ vecs.T, np.eye(32), atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(vecs * U[:, :32].T, axis=1)), 1.0, atol=1e-6)
    assert max(calls) <= 8 and sum(calls) < dim  # blocks of 8, and fewer products than forming A


def test_block_lanczos_finds_a_repeated_eigenvalue_with_a_block_as_large_as_its_multiplicity():
    """A rank-5 projection (eigenvalue 1 five times, then 0): with a block of 5, all five copies;
    the range of the found vectors is the projection's."""
    rng = np.random.default_rng(2)
    dim = 60
    U, _ = np.linalg.qr(rng.standard_normal((dim, 5)))
    A = U @ U.T
    vals, vecs, res = jac.block_lanczos(lambda V: V @ A, dim, 5, tol=1e-10, block=5,
                                         rng=np.random.default_rng(0))
    np.testing.assert_allclose(vals, 1.0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.svd(U.T @ vecs.T, compute_uv=False), 1.0, atol=1e-8)


def _counted(A):
    calls = []

    def apply(V):
        calls.append(len(V))
        return V @ A
    return apply, calls


def _with_spectrum(lam, seed):
    U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(lam), len(lam))))
    return U, (U * lam) @ U.T


def test_block_lanczos_finds_a_projection_of_rank_above_its_block():
    """A rank-7 projection with blocks of 4: the Krylov space stops growing at 8 vectors holding
    the unit eigenvalue 4 times and 0 four times, all exact. As 1 is found as often as the
    block (the complement may hold more copies), the space is locked and the complement
    searched: 4 + 4 + 4 + 3 products, not a sweep of the whole space (the code before returned
    1, 1, 1, 1, 0, 0, 0)."""
    dim = 80
    U, A = _with_spectrum(np.r_[np.ones(7), np.zeros(dim - 7)], seed=3)
    apply, calls = _counted(A)
    vals, vecs, res = jac.block_lanczos(apply, dim, 7, tol=1e-10, block=4, rng=np.random.default_rng(0))
    assert max(calls) == 4 and sum(calls) == 15
    np.testing.assert_allclose(vals, 1.0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.svd(U[:, :7].T @ vecs.T, compute_uv=False), 1.0, atol=1e-8)


def test_block_lanczos_looks_past_an_invariant_space_whose_ritz_values_are_not_zero():
    """Eigenvalues 1 (7 times), 0.5 (10 times), then 0, blocks of 4: the space stops growing at
    12 vectors holding 1, 0.5 and 0 four times each. A probe judged by one Rayleigh–Ritz step
    (Ritz values near 0.1–0.2, below 0.5) returned 1, 1, 1, 1, 0.5, 0.5, 0.5; the complement
    must be searched until its own top pairs converge, and then no further (12 + 11 products)."""
    dim = 80
    U, A = _with_spectrum(np.r_[np.ones(7), np.full(10, 0.5), np.zeros(dim - 17)], seed=4)
    apply, calls = _counted(A)
    vals, vecs, res = jac.block_lanczos(apply, dim, 7, tol=1e-10, block=4, rng=np.random.default_rng(0))
    assert sum(calls) == 23
    np.testing.assert_allclose(vals, 1.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.svd(U[:, :7].T @ vecs.T, compute_uv=False), 1.0, atol=1e-8)
    assert res.max() <= 1e-10


def test_block_lanczos_with_negative_eigenvalues_and_k_near_the_dimension():
    """Eigenvalues 2 (6 times), −1.5 (5 times), 0.25 (9 times) on R^20, blocks of 3, k = 17:
    the top 17 are 2 ×6, 0.25 ×9 and −1.5 twice, found through locked invariant spaces."""
    lam = np.r_[np.full(6, 2.0), np.full(5, -1.5), np.full(9, 0.25)]
    _, A = _with_spectrum(lam, seed=5)
    apply, calls = _counted(A)
    vals, vecs, res = jac.block_lanczos(apply, 20, 17, tol=1e-10, block=3, rng=np.random.default_rng(1))
    np.testing.assert_allclose(vals, np.sort(lam)[::-1][:17], atol=1e-9)
    np.testing.assert_allclose(vecs @ vecs.T, np.eye(17), atol=1e-8)
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", vecs, A, vecs), vals, atol=1e-9)


def test_block_lanczos_returns_nan_for_pairs_not_converged_within_its_budget():
    rng = np.random.default_rng(0)
    dim = 300
    U, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = 1.0 / (1.0 + np.arange(dim) / 50)
    A = (U * lam) @ U.T
    with pytest.warns(RuntimeWarning, match="not converged"):
        vals, vecs, res = jac.block_lanczos(lambda V: V @ A, dim, 8, tol=1e-12, block=4, max_products=24)
    bad = np.isnan(vals)
    assert bad.any() and np.isnan(vecs[bad]).all() and np.isnan(res[bad]).all()
    # What it kept did converge: each is within its residual of a true eigenvalue.
    for v, r in zip(vals[~bad], res[~bad]):
        assert np.min(np.abs(lam - v)) <= r
    with pytest.raises(ValueError, match="block"):
        jac.block_lanczos(lambda V: V @ A, dim, 8, block=0)
    with pytest.raises(ValueError, match="apply returned shape"):
        jac.block_lanczos(lambda V: V[:, :10], dim, 8)


def test_the_cpu_chunk_keeps_the_pixels_per_call_and_at_least_one_row():
    assert jac.cpu_chunk_size(32 * 32) == 32 and jac.cpu_chunk_size(80 * 80) == 5
    assert jac.cpu_chunk_size(16 * 16) == 128 and jac.cpu_chunk_size(256 * 256) == 1
