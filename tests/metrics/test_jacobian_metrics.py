"""The Jacobian metrics (tangent_space, gahb) on denoisers whose Jacobians are known."""

import numpy as np
import pytest
import torch

from gahb_bench.image_classes.photographs import PhotographsDataset
from gahb_bench.image_classes.ray import RayDataset
from gahb_bench.metrics import gahb, tangent_space
from gahb_bench.metrics.context import MetricContext


class Linear(torch.nn.Module):
    """f(y) = A y for a fixed matrix A (D, D)."""

    def __init__(self, matrix: np.ndarray):
        super().__init__()
        self.register_buffer("matrix", torch.from_numpy(np.asarray(matrix, np.float32)))

    def forward(self, y):
        return (y.flatten(1) @ self.matrix.T).reshape(y.shape)


def _ctx(model, dataset, defaults, **settings):
    return MetricContext(model=model, train_images=None, dataset=dataset, data_seed=0,
                         settings={**defaults, **settings}, seed=5, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def ray():
    return RayDataset(8)


def test_the_tangent_projector_scores_perfectly_and_the_identity_does_not(ray):
    f = ray.photograph.ravel() / np.linalg.norm(ray.photograph)
    model, optimum = 0, 1
    out = tangent_space.compute(_ctx(Linear(np.outer(f, f)), ray, tangent_space.DEFAULTS, n_images=3))
    for name in ("tangent_trace_fraction", "tangent_energy_fraction"):
        np.testing.assert_allclose(out[name][model], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["max_principal_angle"][model], 0.0, atol=1e-3)
    np.testing.assert_allclose(out["excess_dimensions"][model], 0.0, atol=1e-5)
    np.testing.assert_allclose(out["tangent_eigenvalues"][model][..., 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["tangent_eigenvalues"][model][..., 1:], 0.0, atol=1e-5)
    # The ray's exact optimum (rank one along the face) is inside the tangent space too, and at
    # small sigma (scales away from the prior's ends) it is the projector: tr J* = 1.
    np.testing.assert_allclose(out["tangent_trace_fraction"][optimum], 1.0, atol=1e-9)
    np.testing.assert_allclose(out["tangent_effective_dimensionality"][optimum][0], 1.0, atol=0.05)

    identity = tangent_space.compute(_ctx(Linear(np.eye(64)), ray, tangent_space.DEFAULTS, n_images=2))
    np.testing.assert_allclose(identity["tangent_trace_fraction"][model], 1 / 64, atol=1e-6)
    np.testing.assert_allclose(identity["tangent_energy_fraction"][model], 1 / 64, atol=1e-6)
    np.testing.assert_allclose(identity["excess_dimensions"][model], 63, atol=1e-4)


def test_the_optimum_column_is_nan_for_a_class_without_its_jacobian():
    from gahb_bench.image_classes.sine_cone import SineConeDataset

    data = SineConeDataset(8)
    out = tangent_space.compute(_ctx(Linear(np.eye(64)), data, tangent_space.DEFAULTS, n_images=2))
    assert np.isnan(out["tangent_trace_fraction"][1]).all()
    np.testing.assert_allclose(out["excess_dimensions"][0], 64 - 2, atol=1e-4)


@pytest.fixture(scope="module")
def photos():
    return PhotographsDataset(8)


@pytest.mark.parametrize("method", ["full", "matrix-free"])
def test_gahb_of_a_projection(photos, method):
    rng = np.random.default_rng(0)
    k = 6
    basis, _ = np.linalg.qr(rng.standard_normal((64, k)))
    P = basis @ basis.T
    settings = dict(n_images=2, n_eigen=10, n_show=3, method=method, n_probes=64, sigmas=(0.05, 0.2))
    out = gahb.compute(_ctx(Linear(P), photos, gahb.DEFAULTS, **settings))
    np.testing.assert_allclose(out["eigenvalues"][..., :k], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["eigenvalues"][..., k:], 0.0, atol=1e-5)
    assert out["eigen_residual"].max() < 1e-4
    if method == "full":  # exact; matrix-free, the effective dimensionality is Hutchinson's estimate
        np.testing.assert_allclose(out["effective_dimensionality"], k, atol=1e-4)
    else:
        np.testing.assert_array_equal(out["effective_dimensionality"], out["trace_hutchinson"])
    # Hutchinson: within 3 standard errors of tr P = k.
    assert (np.abs(out["trace_hutchinson"] - k) <= 3 * out["trace_hutchinson_se"]).all()
    # A linear map is homogeneous; a projection is symmetric.
    assert out["homogeneity_residual"].max() < 1e-5
    if method == "full":
        assert out["asymmetry"].max() < 1e-5
    else:
        assert np.isnan(out["asymmetry"]).all()
    # The coefficients in the eigenvalue-1 space carry all of P y: sum_k <y, e_k>^2 = ||P y||^2.
    noisy = out["noisy_image"][:, 0].reshape(2, 64)
    np.testing.assert_allclose((out["coefficients"][:, 0, :k] ** 2).sum(-1), ((noisy @ P) ** 2).sum(-1), rtol=1e-4)
    assert out["eigenvectors"].shape == (2, 3, 1, 8, 8)
    np.testing.assert_allclose(np.linalg.norm(out["eigenvectors"].reshape(2, 3, 64), axis=-1), 1.0, atol=1e-5)


def test_sure_tracks_the_true_mse_of_a_linear_denoiser(photos):
    # A fixed shrinkage f(y) = 0.5 y: tr = 32 exactly, SURE unbiased; averaged over 64 images it
    # agrees with the true MSE within its sampling error.
    settings = dict(n_images=64, n_eigen=4, n_show=1, method="full", n_probes=4, sigmas=(0.1,))
    out = gahb.compute(_ctx(Linear(0.5 * np.eye(64)), photos, gahb.DEFAULTS, **settings))
    np.testing.assert_allclose(out["effective_dimensionality"], 32, atol=1e-4)
    diff = (out["sure_mse"] - out["true_mse"])[0]
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(64)
    assert abs(diff.mean()) < 0.1 * out["true_mse"].mean()


def test_bad_settings_are_refused(photos):
    with pytest.raises(ValueError, match="method"):
        gahb.compute(_ctx(Linear(np.eye(64)), photos, gahb.DEFAULTS, method="svd", n_images=1))
    with pytest.raises(ValueError, match="n_show <= n_eigen"):
        gahb.compute(_ctx(Linear(np.eye(64)), photos, gahb.DEFAULTS, n_eigen=64, n_images=1))
