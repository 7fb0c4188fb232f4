"""The reference_agreement metric on denoisers whose answers are known: a network that *is* a
reference agrees with it perfectly, a box filter has the box's locality radius."""

import numpy as np
import pytest
import torch

from gahb_bench import jacobian as jac
from gahb_bench.image_classes.gaussian import GaussianDataset
from gahb_bench.metrics import reference_agreement as metric
from gahb_bench.metrics.context import MetricContext
from gahb_bench.references.agreement import centred_r2, median_iqr, residual_r2
from gahb_bench.references.gaussian import fit_gaussian


class Affine(torch.nn.Module):
    """f(y) = b + A y, the gaussian reference at one σ as a network."""

    def __init__(self, fit, sigma):
        super().__init__()
        gain = fit.eigenvalues / (fit.eigenvalues + sigma**2)
        A = (fit.eigenvectors * gain) @ fit.eigenvectors.T
        self.register_buffer("A", torch.from_numpy(A.astype(np.float32)))
        self.register_buffer("b", torch.from_numpy((fit.mean - A @ fit.mean).astype(np.float32)))

    def forward(self, y):
        return (self.b + y.flatten(1) @ self.A.T).reshape(y.shape)


class Box(torch.nn.Module):
    """The P×P moving average (zero padding)."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, y):
        kernel = torch.ones(1, 1, self.size, self.size, dtype=y.dtype) / self.size**2
        return torch.nn.functional.conv2d(y, kernel, padding=self.size // 2)


def _ctx(model, dataset, train, **settings):
    return MetricContext(model=model, train_images=train, dataset=dataset, data_seed=0,
                         settings={**metric.DEFAULTS, **settings}, seed=3, device=torch.device("cpu"))


def test_a_network_that_is_the_gaussian_reference_agrees_with_it_and_the_optimum_is_compared():
    ds = GaussianDataset(8)
    train = ds.train_subset(3000, subset=0, seed=0)
    ctx = _ctx(Affine(fit_gaussian(train), 0.2), ds, train, sigmas=(0.2,), n_images=6,
               references=("gaussian", "empirical", "local"), patch_references=("local",), patch_sizes=(1, 3))
    out = metric.compute(ctx)
    r2 = out["agreement"][0]
    # The control: the noisy input is a worse prediction of this denoiser than itself.
    assert np.all(out["identity_agreement"][0] < 0.99)
    np.testing.assert_allclose(r2[0], 1.0, atol=1e-5)  # the gaussian reference: itself
    assert np.all(r2[1] < 0.99)  # the empirical optimum of 3000 images is not linear
    # With many training images the gaussian reference is near the class's exact Wiener filter.
    assert np.all(out["optimum_agreement"][0, 0] > 0.9)
    np.testing.assert_allclose(out["optimum_agreement"][0, 0], out["optimum_agreement"][0, 1], atol=1e-4)
    # A reference agrees with itself.
    np.testing.assert_allclose(np.diag(out["cross_agreement"][0]), 1.0)
    assert out["best_patch_size"][0, 0] in (1, 3)


def test_the_locality_radius_of_a_box_filter_is_recovered():
    ds = GaussianDataset(16)
    train = ds.train_subset(20, subset=0, seed=0)
    ctx = _ctx(Box(5), ds, train, sigmas=(0.1, 0.4), n_images=2, references=("gaussian",),
               patch_references=(), patch_sizes=(3,), n_rows=8)
    out = metric.compute(ctx)
    np.testing.assert_allclose(out["locality_radius"][:, 0], 2.0)
    np.testing.assert_allclose(out["locality_radius"][:, 1], np.sqrt(8))


def test_row_energy_radius_on_a_wide_two_channel_image():
    """Rows are (channel, row, col) flat indices; distances are spatial, channels summed."""
    shape = (2, 3, 7)
    J = np.zeros((2, 42))
    rows = [1 * 21 + 1 * 7 + 2, 0 * 21 + 2 * 7 + 6]  # channel 1 at (1, 2); channel 0 at (2, 6)
    J[0, 0 * 21 + 1 * 7 + 5] = 1.0  # energy 1 at (1, 5): distance 3 along the row
    J[0, 1 * 21 + 1 * 7 + 2] = 1.0  # energy 1 at the pixel itself, other channel
    J[1, 0 * 21 + 0 * 7 + 6] = 2.0  # energy 4 at (0, 6): distance 2 up the column
    got = jac.row_energy_radius(J, rows, shape, fractions=(0.5, 0.9))
    np.testing.assert_allclose(got, [[0.0, 3.0], [2.0, 2.0]])
    assert np.isnan(jac.row_energy_radius(np.zeros((1, 42)), rows[:1], shape)).all()  # no energy, no radius


def test_row_energy_radius_counts_energy_by_distance():
    # One row whose energy is 1 at the centre and 3 at distance 2: 25% at r = 0, 100% at r = 2.
    J = np.zeros((1, 1, 1, 25))
    J[..., 12] = 1.0
    J[..., 14] = np.sqrt(3.0)
    got = jac.row_energy_radius(J.reshape(1, 1, 25), [12], (1, 5, 5), fractions=(0.25, 0.5, 1.0))
    np.testing.assert_allclose(got[0, 0], [0.0, 2.0, 2.0])


def test_references_over_the_training_budget_are_skipped():
    ds = GaussianDataset(8)
    train = ds.train_subset(50, subset=0, seed=0)
    ctx = _ctx(Box(3), ds, train, sigmas=(0.2,), n_images=3, references=("gaussian", "equivariant-local"),
               patch_references=("equivariant-local",), patch_sizes=(3,), max_train={"equivariant-local": 10})
    out = metric.compute(ctx)
    assert np.isfinite(out["agreement"][0, 0]).all() and np.isnan(out["agreement"][0, 1]).all()
    assert np.isnan(out["best_patch_size"]).all()


def test_centred_r2_and_its_summary():
    rng = np.random.default_rng(0)
    f = rng.random((4, 1, 5, 5))
    assert np.allclose(centred_r2(f, f), 1.0)
    flat = np.broadcast_to(f.mean(axis=(1, 2, 3), keepdims=True), f.shape)
    assert np.allclose(centred_r2(f, flat), 0.0)
    assert np.all(centred_r2(f, 2 * f - flat) < 1)  # scaling about the mean is not agreement
    assert np.isnan(centred_r2(np.ones((1, 4)), np.zeros((1, 4))))[0]
    med, iqr = median_iqr([1.0, 2.0, 3.0, 4.0, np.nan])
    assert med == 2.5 and iqr == pytest.approx(1.5)
    with pytest.raises(ValueError, match="same shape"):
        centred_r2(np.zeros((2, 4)), np.zeros((2, 5)))


def test_the_figure_draws_the_distance_that_r2_stands_for():
    rng = np.random.default_rng(1)
    f = rng.random((3, 1, 6, 6))
    g = f + 0.1 * rng.standard_normal(f.shape)
    spread = ((f - f.mean(axis=(1, 2, 3), keepdims=True)) ** 2).sum(axis=(1, 2, 3))
    direct = ((f - g) ** 2).sum(axis=(1, 2, 3)) / spread
    assert np.allclose(metric.distance_from_r2(centred_r2(f, g)), direct)
    assert metric.distance_from_r2(1.0) == 1e-4  # exact agreement sits at the log axis's floor
    assert metric.distance_from_r2(-150.0) == 151.0
    assert np.isnan(metric.distance_from_r2(np.nan))  # a missing median stays missing, not floored


def test_residual_r2_separates_denoisers_that_the_centred_r2_cannot():
    rng = np.random.default_rng(1)
    clean = rng.random((6, 1, 8, 8))
    noisy = clean + 0.01 * rng.standard_normal(clean.shape)
    removal = noisy - clean
    removal -= removal.mean(axis=(1, 2, 3), keepdims=True)  # a zero-mean residual: the identity scores 0 exactly
    f = noisy - removal
    assert np.allclose(residual_r2(f, f, noisy), 1.0)
    np.testing.assert_allclose(residual_r2(f, noisy, noisy), 0.0, atol=1e-12)
    half = noisy - 0.5 * removal  # removes half of what f removes: 1 - 1/4
    np.testing.assert_allclose(residual_r2(f, half, noisy), 0.75)
    # At this small sigma the centred r2 cannot tell these apart: all are above 0.99.
    assert np.all(centred_r2(f, noisy) > 0.99) and np.all(centred_r2(f, half) > 0.99)


def test_best_patch_size_is_nan_for_a_tie():
    assert metric.best_patch_size([0.2, 0.7, 0.5], [3, 5, 7]) == 5
    assert np.isnan(metric.best_patch_size([0.4, 0.4, 0.4], [3, 5, 7]))  # flat: N = 1
    assert np.isnan(metric.best_patch_size([np.nan, np.nan], [3, 5]))
    assert metric.best_patch_size([np.nan, 0.1], [3, 5]) == 5


def test_the_control_baseline_is_measured_on_the_same_images():
    ds = GaussianDataset(8)
    train = ds.train_subset(50, subset=0, seed=0)
    ctx = _ctx(Box(3), ds, train, sigmas=(0.1, 0.4), n_images=4, references=("empirical",),
               patch_references=(), n_rows=2)
    out = metric.compute(ctx)
    assert np.isfinite(out["baseline_agreement"]).all() and np.isfinite(out["baseline_residual_agreement"]).all()
    assert np.all(out["baseline_agreement"] <= 1) and np.all(out["baseline_residual_agreement"] <= 1)
    ctx = _ctx(Box(3), ds, train, sigmas=(0.1,), n_images=4, references=("empirical",), patch_references=(),
               n_rows=2, control_baseline=None)
    assert np.isnan(metric.compute(ctx)["baseline_agreement"]).all()
