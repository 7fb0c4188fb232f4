"""Manifold image classes (disks, sine_cone, ray): renderers, tangent spaces, latents, plugins."""

import numpy as np
import pytest

from gahb_bench.image_classes import disks as disks_mod
from gahb_bench.image_classes import ray as ray_mod
from gahb_bench.image_classes import sine_cone as sine_mod
from gahb_bench.image_classes.disks import DisksDataset, disk_coverage, render_disks
from gahb_bench.image_classes.ray import RayDataset, render_ray, truncated_normal_mean
from gahb_bench.image_classes.sine_cone import SineConeDataset, render_sine_cone

SIZE = 16


def _float64_renderer(dataset):
    """The class's renderer in float64 (the dataset's render() is the same, cast to float32)."""
    if isinstance(dataset, DisksDataset):
        return lambda lat: render_disks(lat, dataset.image_size, dataset.edge_width)
    if isinstance(dataset, SineConeDataset):
        return lambda lat: render_sine_cone(lat, dataset.image_size, dataset.frequency)
    if isinstance(dataset, RayDataset):
        return lambda lat: render_ray(lat, dataset.photograph)
    raise TypeError(type(dataset))


CASES = {
    "disks": lambda: DisksDataset(SIZE),
    "disks-sharp-24": lambda: DisksDataset(24, edge_width=0.3),
    "sine_cone": lambda: SineConeDataset(SIZE),
    "sine_cone-oblique": lambda: SineConeDataset(SIZE, frequency_x=2, frequency_y=-1),
    "ray": lambda: RayDataset(SIZE),
}


@pytest.fixture(params=sorted(CASES))
def dataset(request):
    return CASES[request.param]()


def _finite_difference_jacobian(render, latents, step=1e-5):
    k = latents.shape[1]
    columns = []
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        columns.append((render(latents + e) - render(latents - e)) / (2.0 * step))
    return np.stack(columns, axis=1).reshape(len(latents), k, -1)


def test_finite_differences_lie_in_the_tangent_space(dataset):
    latents = dataset.test_latents(6, seed=3)
    basis = dataset.tangent_basis(latents)
    k = dataset.latent_dim
    assert basis.shape == (6, k, 1, dataset.image_size, dataset.image_size)
    u = basis.reshape(6, k, -1)
    fd = _finite_difference_jacobian(_float64_renderer(dataset), latents)
    projected = np.einsum("nkd,nid->nik", u, fd)
    residual = fd - np.einsum("nik,nkd->nid", projected, u)
    relative = np.linalg.norm(residual, axis=-1) / np.linalg.norm(fd, axis=-1)
    assert relative.max() < 1e-3


def test_every_tangent_direction_is_needed(dataset):
    """The residual test above can fail: without any one of its k vectors, the basis no longer
    holds the renderer's finite differences (the tangent space has full rank k)."""
    latents = dataset.test_latents(4, seed=3)
    u = dataset.tangent_basis(latents).reshape(4, dataset.latent_dim, -1)
    fd = _finite_difference_jacobian(_float64_renderer(dataset), latents)
    for drop in range(dataset.latent_dim):
        kept = np.delete(u, drop, axis=1)
        residual = fd - np.einsum("nik,nkd->nid", np.einsum("nkd,nid->nik", kept, fd), kept)
        relative = np.linalg.norm(residual, axis=-1) / np.linalg.norm(fd, axis=-1)
        assert relative.max() > 0.05, f"dropping direction {drop} went unnoticed"


def test_basis_is_orthonormal_and_rank_is_the_manifold_dimension(dataset):
    latents = dataset.test_latents(6, seed=4)
    k = dataset.latent_dim
    u = dataset.tangent_basis(latents).reshape(6, k, -1)
    np.testing.assert_allclose(np.einsum("nkd,nld->nkl", u, u), np.broadcast_to(np.eye(k), (6, k, k)), atol=1e-10)
    fd = _finite_difference_jacobian(_float64_renderer(dataset), latents)
    singular = np.linalg.svd(fd, compute_uv=False)
    assert np.all(singular[:, -1] / singular[:, 0] > 1e-6)
    assert fd.shape[1] == k == dataset.declares()["dimension"]
    assert dataset.declares()["tangent"] is True


def test_latents_and_images_are_reproducible_and_in_range(dataset):
    a = dataset.test_latents(8, seed=11)
    np.testing.assert_array_equal(a, dataset.test_latents(8, seed=11))
    assert not np.array_equal(a, dataset.test_latents(8, seed=12))
    images = dataset.test_set(8, seed=11)
    assert images.dtype == np.float32 and images.shape == (8, 1, dataset.image_size, dataset.image_size)
    np.testing.assert_allclose(images, _float64_renderer(dataset)(a)[:, None], atol=1e-6)
    np.testing.assert_array_equal(images, dataset.test_set(8, seed=11))
    train = dataset.train_subset(8, subset=0, seed=11)
    for x in (images, train):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert not np.array_equal(train, dataset.train_subset(8, subset=1, seed=11))


def test_disk_latents_follow_the_prior():
    latents = DisksDataset(SIZE).test_latents(4000, seed=0)
    cx, cy, r, fg, bg = latents.T
    assert r.min() >= 3.0 and r.max() < (SIZE - 3) / 2
    assert np.all((cx >= r) & (cx < SIZE - r) & (cy >= r) & (cy < SIZE - r))
    assert np.all((fg >= 0) & (fg <= 1) & (bg >= 0) & (bg <= 1))
    assert abs(r.mean() - (3.0 + (SIZE - 3) / 2) / 2) < 0.05


def test_disk_coverage_integrates_to_the_blurred_area():
    """Σ_p Φ((r − ρ_p)/w) = E[π (r + wε)²] = π (r² + w²) for a disk inside the image.

    Sampling at pixel centres is exact up to aliasing, which decays like exp(−2π²w²): about
    3e-4 at w = 0.5 (the default), 6e-3 at w = 0.3.
    """
    rng = np.random.default_rng(0)
    for w, tolerance in ((0.3, 1e-2), (0.5, 1e-3), (1.0, 1e-5)):
        rows = np.column_stack([12.0 + rng.uniform(-0.5, 0.5, (20, 2)), rng.uniform(4.0, 7.0, 20)])
        area = disk_coverage(rows, 24, w).sum(axis=(1, 2))
        np.testing.assert_allclose(area, np.pi * (rows[:, 2] ** 2 + w**2), rtol=tolerance)


def test_sine_cone_is_a_cone_with_orthogonal_generators():
    ds = SineConeDataset(SIZE)
    latents = ds.test_latents(5, seed=0)
    x = render_sine_cone(latents, SIZE)
    # The mean grey level is a/2 (the cone's axis is the constant image) ...
    np.testing.assert_allclose(x.mean(axis=(1, 2)), latents[:, 0] / 2, atol=1e-12)
    # ... and ∂x/∂a = x/a, ∂x/∂φ ⟂ ∂x/∂a.
    jac = sine_mod.sine_cone_jacobian(latents, SIZE)
    np.testing.assert_allclose(jac[:, 0], x / latents[:, 0, None, None], atol=1e-12)
    assert np.abs(np.einsum("nij,nij->n", jac[:, 0], jac[:, 1])).max() < 1e-10


def test_ray_tangent_is_the_normalized_photograph_and_the_optimum_is_exact():
    ds = RayDataset(SIZE)
    f = ds.photograph
    assert f.max() == 1.0 and f.min() >= 0.0
    np.testing.assert_allclose(ds.tangent_basis(np.array([[0.3]]))[0, 0, 0], f / np.linalg.norm(f))
    # The truncated-normal mean agrees with scipy's, including far in the tails.
    from scipy.stats import truncnorm

    mu = np.array([-40.0, -1.0, 0.05, 0.5, 0.99, 2.0, 30.0])  # scipy may warn in its far tails
    for tau in (1e-3, 0.2, 5.0):
        with np.errstate(invalid="ignore"):
            want = truncnorm.mean((0.1 - mu) / tau, (1.0 - mu) / tau, loc=mu, scale=tau)
        np.testing.assert_allclose(truncated_normal_mean(mu, tau, 0.1, 1.0), want, rtol=1e-9, atol=1e-12)
    # Monte-Carlo MSE of the optimal denoiser matches the quadrature MSE*(σ) (per pixel).
    x = ds.test_set(3000, seed=0).astype(np.float64)
    for sigma in (0.05, 1.0):
        y = x + sigma * np.random.default_rng(1).standard_normal(x.shape)
        err = ((ds.optimal_denoiser(y, sigma) - x) ** 2).mean(axis=(1, 2, 3))
        exact = ds.optimal_mse(sigma)
        assert abs(err.mean() / exact - 1.0) < 4.0 * err.std() / np.sqrt(len(err)) / exact
        # Optimal: the identity (σ² per pixel) is worse.
        assert exact < sigma**2
    # Small σ: projection on the 1-D tangent space, MSE* → σ²/d; large σ: the class mean.
    assert abs(ds.optimal_mse(1e-3) * f.size / 1e-6 - 1.0) < 0.01
    far = ds.optimal_denoiser(x[:2] + 1e3 * np.random.default_rng(2).standard_normal(x[:2].shape), 1e3)
    np.testing.assert_allclose(far[:, 0], np.broadcast_to(0.55 * f, far[:, 0].shape), atol=2e-3)


def test_plugins_register_buildable_classes():
    found = {}
    for module in (disks_mod, sine_mod, ray_mod):
        module.gahb_register_image_classes(lambda record: found.setdefault(record.name, record))
    assert set(found) == {"disks", "sine_cone", "ray"}
    expected = {"disks": 5, "sine_cone": 2, "ray": 1}
    for name, record in found.items():
        ds = record.build(SIZE, **record.params)
        assert ds.declares()["dimension"] == expected[name]
    assert found["disks"].build(SIZE).declares()["optimum"] == "monte-carlo"
    assert found["ray"].build(SIZE).declares()["optimum"] == "exact"


@pytest.mark.parametrize("build, message", [
    (lambda: DisksDataset(9), "at least 10"),
    (lambda: DisksDataset(SIZE, edge_width=0.0), "edge_width"),
    (lambda: SineConeDataset(SIZE, amplitude_min=0.0), "amplitude"),
    (lambda: SineConeDataset(SIZE, frequency_x=8), "frequency"),
    (lambda: RayDataset(SIZE, scale_min=0.5, scale_max=0.4), "scale"),
    (lambda: RayDataset(SIZE, face_index=200), "face_index"),
    (lambda: DisksDataset(SIZE).tangent_basis(np.zeros((2, 4))), "shape"),
    (lambda: SineConeDataset(SIZE).render(np.zeros(3)), "shape"),
    (lambda: RayDataset(SIZE).render(np.zeros((2, 2))), "shape"),
])
def test_bad_input_raises_a_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()
