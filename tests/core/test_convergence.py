"""Convergence diagnostics: the loss profile, its last-tenth change, and the verdict."""

import math

import numpy as np
import pytest

from gahb_bench.convergence import loss_change, loss_profile, verdict


def test_profile_is_the_mean_of_each_tenth():
    losses = np.repeat(np.arange(10.0, 0.0, -1.0), 7)  # 10 plateaus of 7 steps
    assert loss_profile(losses).tolist() == list(np.arange(10.0, 0.0, -1.0))
    assert np.isnan(loss_profile(np.ones(5))).all()


def test_change_and_standard_error_on_a_known_sequence():
    rng = np.random.default_rng(0)
    flat = 2.0 + 0.1 * rng.standard_normal(10_000)
    change, se = loss_change(flat)
    # A stationary loss: no change beyond its standard error, se ≈ 0.1·√(2/1000)/2.
    assert abs(change) < 3 * se and se == pytest.approx(0.1 * math.sqrt(2 / 1000) / 2, rel=0.1)
    falling = np.linspace(2.0, 1.0, 1000)
    change, _ = loss_change(falling)
    # Means of the last two tenths: 1.05 and 1.15 (to within a step), change = −0.1 / 1.15.
    assert change == pytest.approx(-0.1 / 1.15, rel=0.02)
    assert math.isnan(loss_change(np.ones(10))[0])


def test_verdict_names_each_reason():
    assert verdict(-0.01, 0.005, 2.0) == ""
    assert "still falling 20%" in verdict(-0.2, 0.01, 2.0)
    assert verdict(-0.2, 0.15, 2.0) == ""  # a fall within two standard errors is noise
    assert "worse than the identity" in verdict(0.0, 0.01, -1.5)
    assert verdict(0.0, 0.01, -1.54).endswith("(-1.5 dB)")
    assert verdict(0.0, 0.01, -0.0004) == "worse than the identity on its training images at the smallest sigma (-0.0004 dB)"
    assert verdict(0.0, 0.01, float("nan")) == ""
    assert "no loss profile" in verdict(float("nan"), float("nan"))


def _cell(train_at_smallest_sigma, change, change_se=0.01, gap=0.1):
    import xarray as xr

    sigma = np.array([0.01, 0.1, 1.0])
    psnr = np.array([[train_at_smallest_sigma, 25.0, 10.0], [30.0, 22.0, 9.0]])
    return xr.Dataset(
        {"psnr": (("split", "sigma"), psnr), "loss_change": change, "loss_change_se": change_se,
         "psnr_gap": gap, "psnr_gap_floor": 0.0},
        coords={"split": ["train", "test"], "sigma": sigma, "psnr_in": ("sigma", -20 * np.log10(sigma))})


def test_the_verdict_reads_a_stored_cell():
    from gahb_bench.convergence import cell_verdict, low_noise_gain

    assert low_noise_gain(_cell(41.5, 0.0)) == pytest.approx(1.5)
    assert cell_verdict(_cell(41.5, -0.01)) == ""
    assert "worse than the identity" in cell_verdict(_cell(39.0, -0.01))
    assert "still falling" in cell_verdict(_cell(45.0, -0.3))


def test_shortfalls_name_the_reference_and_the_sigma_range():
    from gahb_bench.convergence import shortfalls

    sigmas = np.array([0.01, 0.1, 1.0])
    test = np.array([40.0, 25.0, 12.0])
    refs = {"the image-mean baseline": np.array([20.0, 24.0, 14.0]), "the N=10 network": np.array([39.9, 25.2, 12.1])}
    (reason,) = shortfalls(test, sigmas, refs)  # 0.1 and 0.2 dB below N=10: within the tolerance
    assert reason.startswith("test PSNR below the image-mean baseline at sigma 1-1 (by up to 2.0 dB)")
    assert shortfalls(test, sigmas, refs, tolerance=0.05)[1].startswith("test PSNR below the N=10 network at sigma 0.1-1")


def test_the_verdict_of_a_stored_cell_includes_shortfalls():
    from gahb_bench.convergence import cell_verdict

    cell = _cell(41.5, -0.01)
    assert cell_verdict(cell) == ""
    assert "below the image-mean baseline" in cell_verdict(cell, {"the image-mean baseline": np.array([0, 0, 20.0])})
    # A memorizing cell (excess gap of 5 dB) is below the control by design: not flagged for it.
    assert cell_verdict(_cell(41.5, -0.01, gap=5.0), {"the image-mean baseline": np.array([0, 0, 20.0])}) == ""
