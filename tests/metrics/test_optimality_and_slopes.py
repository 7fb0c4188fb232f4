"""The optimality and slope metrics on denoisers whose answers are known: the class's exact
optimum (given as a baseline, which knows σ) and the identity."""

import numpy as np
import pytest
import torch

from gahb_bench.contracts import Baseline
from gahb_bench.image_classes.gaussian import GaussianDataset
from gahb_bench.metrics import optimality, psnr_slopes
from gahb_bench.metrics.context import MetricContext
from gahb_bench.metrics.psnr import settings_sigma_grid


class Identity(torch.nn.Module):
    def forward(self, y):
        return y


class OracleRegistry:
    """Serves one baseline, ``oracle``: the class's exact optimal denoiser."""

    def __init__(self, dataset):
        self.record = Baseline(name="oracle", denoise=lambda noisy, sigma: dataset.optimal_denoiser(noisy, sigma))

    def baseline(self, name):
        assert name == "oracle"
        return self.record


def _ctx(dataset, defaults, **settings):
    return MetricContext(model=Identity(), train_images=None, dataset=dataset, data_seed=0,
                         settings={**defaults, "baselines": ("oracle",), **settings}, seed=3,
                         device=torch.device("cpu"), registry=OracleRegistry(dataset))


def test_the_optimum_has_no_gap_and_the_identity_pays_exactly_its_excess():
    data = GaussianDataset(8, gamma=4.0)
    out = optimality.compute(_ctx(data, optimality.DEFAULTS, n_test=64, n_sigma=5))
    model, oracle = 0, 1
    sigmas = settings_sigma_grid({**optimality.DEFAULTS, "n_sigma": 5})
    np.testing.assert_array_equal(out["optimality_gap"][oracle], 0.0)
    np.testing.assert_allclose(out["optimality_gap_db"][oracle], 0.0, atol=1e-12)
    assert out["kl_bound"][oracle] == 0.0
    # The measured MSE* is the class's exact one, within sampling error (4096 pixels per sigma).
    np.testing.assert_allclose(out["optimal_mse"], data.optimal_mse(sigmas), rtol=0.1)
    # The identity: MSE = sigma^2, and Delta = sigma^2 - MSE* exactly (Pythagoras: f* is the
    # conditional mean). Estimated directly, Delta is closer to that than the difference of the two
    # measured MSEs, most of all at small sigma where both MSEs are nearly sigma^2.
    np.testing.assert_allclose(out["denoiser_mse"][model], sigmas**2, rtol=0.1)
    exact = sigmas**2 - data.optimal_mse(sigmas)
    np.testing.assert_allclose(out["optimality_gap"][model], exact, rtol=0.1)
    difference = out["denoiser_mse"][model] - out["optimal_mse"]
    assert abs(out["optimality_gap"][model][0] - exact[0]) < 0.5 * abs(difference[0] - exact[0])
    assert (out["optimality_gap_db"][model] > 0).all() and out["kl_bound"][model] > 0
    assert out["kl_bound_band"].shape == (2, 4)
    np.testing.assert_allclose(out["kl_bound_band"].sum(axis=1), out["kl_bound"])


def test_slopes_of_the_optimum_the_identity_and_the_calibration():
    data = GaussianDataset(16, gamma=4.0)  # rate 1 - 2/gamma = 0.5
    # At 16 px the range [0.05, 0.5] is calibrated for this rate (the default [0.02, 0.2] is not:
    # error 0.08, finite size).
    out = psnr_slopes.compute(_ctx(data, psnr_slopes.DEFAULTS, n_test=64, n_boot=200, sigma_min=0.05,
                                   sigma_max=0.5))
    model, oracle = 0, 1
    assert out["optimal_slope"] == pytest.approx(0.5)
    # The identity's output PSNR is its input PSNR: slope 1.
    assert out["slope"][model] == pytest.approx(1.0, abs=0.01)
    assert out["slope_low"][model] <= out["slope"][model] <= out["slope_high"][model]
    # The exact optimum on its own class has the calibration's slope (same spectrum, size, range).
    assert out["slope"][oracle] == pytest.approx(out["calibration_slope"], abs=0.03)
    assert abs(out["calibration_error"]) <= psnr_slopes.CALIBRATION_TOLERANCE


def test_calibration_detects_a_fit_range_dominated_by_finite_size():
    # At 16 px and sigma in [0.01, 0.1], a C^1 rate (slope 1/2) is fitted as 0.65: every
    # coefficient is kept at small sigma. At 80 px over [0.01, 0.3] the same rate is found.
    small = psnr_slopes.calibration_slope(0.5, 16, 0.15, np.geomspace(0.01, 0.1, 8))
    assert small - 0.5 > 0.1
    for alpha in (1, 2, 3, 5):
        rate = alpha / (alpha + 1)
        fitted = psnr_slopes.calibration_slope(rate, 80, 0.15, np.geomspace(0.01, 0.3, 8))
        assert abs(fitted - rate) <= psnr_slopes.CALIBRATION_TOLERANCE, alpha
    with pytest.raises(ValueError, match="optimal_slope"):
        psnr_slopes.calibration_slope(1.0, 16, 0.15, np.geomspace(0.01, 0.1, 8))


def test_a_class_of_rate_zero_gets_slopes_without_calibration():
    """Paper-code alpha = 1 (regions C^0) declares an optimal slope of 0: no Gaussian field has
    that rate, so the calibration is NaN while the slopes are still fitted."""
    from gahb_bench.image_classes.calpha import CAlphaDataset

    data = CAlphaDataset(8, alpha=1.0, convention="paper-code")
    assert data.optimal_psnr_slope() == 0
    out = psnr_slopes.compute(_ctx(data, psnr_slopes.DEFAULTS, n_test=8, n_boot=20, n_sigma=4, baselines=()))
    assert np.isnan(out["calibration_slope"]) and np.isnan(out["calibration_error"])
    assert np.isfinite(out["slope"]).all()


def test_the_trivial_controls_are_scored_beside_the_fixed_bases():
    """Both metrics measure the image-mean control and soft thresholding by default. The control
    knows only an image's mean level: its error, the image's own variance plus σ²/D, hardly
    moves with σ (slope ≈ 0), and at small σ it is far from the optimum, farther than
    soft thresholding."""
    for defaults in (optimality.DEFAULTS, psnr_slopes.DEFAULTS):
        assert {"image-mean", "wavelet-soft", "wavelet-hard", "bandlets"} <= set(defaults["baselines"])
    data = GaussianDataset(16, gamma=4.0)
    controls = ("image-mean", "wavelet-soft")
    ctx = _ctx(data, psnr_slopes.DEFAULTS, n_test=32, n_boot=50, sigma_min=0.05, sigma_max=0.5, baselines=controls)
    ctx.registry = None  # the installed baselines
    slopes = psnr_slopes.compute(ctx)
    mean, soft = 1, 2  # 0 is the model
    assert abs(slopes["slope"][mean]) < 0.05
    assert 0.2 < slopes["slope"][soft] < 1.0
    ctx = _ctx(data, optimality.DEFAULTS, n_test=32, n_sigma=4, baselines=controls)
    ctx.registry = None
    gaps = optimality.compute(ctx)["optimality_gap_db"]
    assert gaps[mean][0] > gaps[soft][0] > 0 and gaps[mean][0] > 10
