"""The scorecard: each headline score read from the summaries and cells it is defined on."""

import json

import numpy as np
import pytest

import gahb_bench
from gahb_bench import scorecard, store
from gahb_bench.metrics import paired_samples
from gahb_bench.cli import main
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from helpers import register_battery


def _geometry(summary):
    return {"geometry": (None, summary)}


def test_optimality_scores_average_the_classes_with_an_optimum_and_score_the_baselines_too():
    summary = {"optimality": {"gap_db_model/gaussian": 1.0, "gap_db_model/disks": 3.0, "gap_db_model/ray": None,
                              "kl_bound_model/gaussian": 0.5, "kl_bound_model/disks": 0.25,
                              "gap_db_bandlets/gaussian": 5.0, "gap_db_bandlets/disks": 7.0}}
    values = scorecard.compute(_geometry(summary))
    gap = values["optimality_gap_db"]
    assert (gap.value, gap.low, gap.high) == (2.0, 1.0, 3.0) and "disks, gaussian" in gap.note
    assert values["kl_bound"].value == 0.375
    assert scorecard.baseline_scores(_geometry(summary))["bandlets"]["optimality_gap_db"].value == 6.0
    assert values["excess_gap_db"].value is None and "no generalization" in values["excess_gap_db"].note


def test_the_tangent_fraction_is_read_at_the_smallest_sigma():
    summary = {"tangent_space": {"tangent_energy_fraction_model_sigma0.04/disks": 0.9,
                                 "tangent_energy_fraction_model_sigma0.01/disks": 0.2,
                                 "tangent_energy_fraction_model_sigma0.01/ray": 0.4,
                                 "tangent_energy_fraction_optimum_sigma0.01/disks": 0.99}}
    value = scorecard.compute(_geometry(summary))["tangent_energy_fraction"]
    assert value.value == pytest.approx(0.3) and (value.low, value.high) == (0.2, 0.4)


def _pairs(similarities, n_train=(1, 100)):
    """A generalization Dataset of one seed's paired similarities per N (rows of ``similarities``),
    every pair done, with unrelated random samples (so the unpaired control is low)."""
    import xarray as xr

    sims = np.asarray(similarities, dtype=float)[None, None, :, None, :]  # arch, class, N, seed, sample
    samples = np.random.default_rng(0).uniform(size=(1, 1, len(n_train), 1, 2, 6, 1, 8, 8))
    dims = ("arch", "image_class", "n_train", "seed")
    return xr.Dataset({
        "pair_status": (dims, np.ones((1, 1, len(n_train), 1))),
        "paired_similarity_centred": ((*dims, "sample"), sims),
        "paired_similarity_median": (dims, np.median(sims, axis=-1)),
        "samples": ((*dims, "subset", "shown", "channel", "row", "col"), samples),
    }, coords={"arch": ["net"], "image_class": ["photographs"], "n_train": list(n_train), "seed": [0]})


def test_n_star_says_when_a_collapse_was_rejected():
    ds = _pairs(np.full((2, 16), 0.95))
    gen = {"paired_samples": {"n_star": None, "collapsed_n": 1.0}}
    value = scorecard._n_star(ds, gen)
    assert value.value is None and "at N = 1 the S1 and S2 samples agree but so do unpaired ones" in value.note
    value = scorecard._n_star(ds, {"paired_samples": {"n_star": None, "collapsed_n": None, "not_denoising_n": 1.0}})
    assert value.value is None and "the models are worse than the identity" in value.note
    value = scorecard._n_star(ds, {"paired_samples": {"n_star": 100.0, "collapsed_n": None}})
    assert value.value == 100.0 and value.note.startswith("at N = 100 the median similarity is 0.950")
    assert scorecard._n_star(_pairs(np.zeros((2, 16))).assign(pair_status=lambda d: d.pair_status * 0),
                             {"paired_samples": {"n_star": None}}).note == "no pair done"


def test_n_star_carries_the_range_the_samples_allow():
    rng = np.random.default_rng(1)
    # At N = 1 the medians are far below 0.9; at N = 100 spread around 0.9 (16 samples, median
    # ~0.91): whether the level is reached is within the bootstrap interval.
    ds = _pairs(np.stack([rng.uniform(-0.5, 0.2, 16), np.clip(rng.normal(0.91, 0.08, 16), -1, 1)]))
    level = 0.9
    n = 100.0 if float(ds.paired_similarity_median[0, 0, 1, 0]) >= level else None
    value = scorecard._n_star(ds, {"paired_samples": {"n_star": n, "similarity_level": level}})
    assert "which holds the level 0.9: these samples do not decide it" in value.note
    assert value.low in (None, 100.0) and value.high is None  # at the intervals' bottoms: not reached
    # Far from the level at both N: decided, and the range is the value itself.
    ds = _pairs(np.stack([np.full(16, 0.1), np.linspace(0.97, 0.99, 16)]))
    value = scorecard._n_star(ds, {"paired_samples": {"n_star": 100.0, "similarity_level": level}})
    assert (value.value, value.low, value.high) == (100.0, 100.0, 100.0) and "holds the level" not in value.note
    assert scorecard.shown(value.value, value.low, value.high) == "100 [100, 100]"
    assert scorecard.shown(20911.0) == "20911" and scorecard.shown(0.12345) == "0.1235"


def test_n_star_of_a_class_without_a_done_pair_or_a_finite_median_is_a_note_not_a_crash():
    import xarray as xr

    two = xr.concat([_pairs(np.full((2, 16), 0.95)).assign_coords(image_class=["disks"]),
                     _pairs(np.full((2, 16), 0.95)).assign_coords(image_class=["photographs"])], "image_class")
    two["pair_status"].loc[{"image_class": "disks"}] = 0  # the first class in key order has no pair done
    value = scorecard._n_star(two, {"paired_samples": {"n_star/disks": None, "n_star/photographs": 1.0}})
    assert value.value is None and value.note == "no pair of disks done"
    failed = _pairs(np.full((2, 16), np.nan))  # pairs done, every sample failed: every pair disagrees
    value = scorecard._n_star(failed, {"paired_samples": {"n_star": None}})
    assert value.value is None and value.note == ("not reached on the grid; at N = 100 the median similarity is "
                                                  "-1.000, 95% bootstrap interval over the samples of these models "
                                                  "[-1.000, -1.000]")
    # A store written before failed pairs counted as disagreements holds the median over the
    # survivors; N* is read from the pairs themselves, so old and new stores agree.
    survivors = np.full((2, 16), np.nan)
    survivors[:, :2] = 0.95
    old = _pairs(survivors).assign(paired_similarity_median=lambda d: d.paired_similarity_median * 0 + 0.95)
    medians, _, _ = paired_samples._criteria(old, "photographs")
    assert (medians == -1.0).all()


def test_the_median_interval_is_a_bootstrap_of_the_summary_statistic():
    from gahb_bench.metrics.paired_samples import median_interval

    x = np.linspace(0.0, 1.0, 101)
    low, high = median_interval(x[None])
    assert low < 0.5 < high and high - low < 0.3  # the median 0.5, its interval within a few σ_median
    assert median_interval(np.full((2, 5), 0.7)) == (0.7, 0.7)  # no spread, no interval
    assert np.isnan(median_interval(np.empty((0, 4)))).all()  # no done seed
    assert median_interval(np.full((1, 4), np.nan)) == (-1.0, -1.0)  # a done seed whose every sample failed


def test_the_homogeneity_residual_averages_every_gahb_experiment_class_and_sigma():
    experiments = {"geometry": (None, {"gahb": {"homogeneity_residual_sigma0.04/disks": 0.1,
                                                "homogeneity_residual_sigma0.4/disks": 0.3,
                                                "effective_dimensionality_sigma0.04/disks": 7.0}}),
                   "calpha-alpha5": (None, {"gahb": {"homogeneity_residual_sigma0.1": 0.5}})}
    value = scorecard.compute(experiments)["homogeneity_residual"]
    assert value.value == pytest.approx(0.3) and (value.low, value.high) == (0.1, 0.5)
    assert "3 (experiment, σ, class)" in value.note
    assert scorecard.compute(_geometry({}))["homogeneity_residual"].value is None


@pytest.mark.parametrize("low, high, error_interval, gain_interval", [
    (0.69, 0.71, (0.09, 0.11), (0.09, 0.11)),
    (0.75, 0.85, (0.0, 0.05), (0.15, 0.2)),  # the interval holds α/(α+1): the error's low end is 0
])
def test_slope_scores_carry_the_bootstrap_interval(low, high, error_interval, gain_interval):
    slopes = {"slope": 0.7 if low < 0.75 else 0.78, "optimal_slope": 0.8, "slope_low": low, "slope_high": high,
              "slope_bandlets": 0.6, "slope_wavelet-hard": 0.55, "calibration_error": 0.017}
    values = scorecard.compute({"calpha-alpha5": (None, {"psnr_slopes": slopes})})
    error = values["calpha_slope_error"]
    assert error.value == pytest.approx(abs(slopes["slope"] - 0.8))
    assert (error.low, error.high) == pytest.approx(error_interval)
    gain = values["calpha_slope_gain_over_bandlets"]  # bandlets are 0.2 from the optimum
    assert gain.value == pytest.approx(0.2 - abs(slopes["slope"] - 0.8))
    assert (gain.low, gain.high) == pytest.approx(gain_interval)
    base = scorecard.baseline_scores({"calpha-alpha5": (None, {"psnr_slopes": slopes})})
    assert base["wavelet-hard"]["calpha_slope_error"].value == pytest.approx(0.25)


def test_only_alphas_whose_fit_range_is_calibrated_are_scored():
    """Paper-code alpha = 1 declares an optimal slope of 0, which the image-mean denoiser's flat
    curve reaches exactly: scored, it would be a perfect error. An alpha whose Wiener
    calibration is off by more than the tolerance is left out too, and both are named."""
    def experiment(slope, optimal, calibration):
        return (None, {"psnr_slopes": {"slope": slope, "optimal_slope": optimal, "slope_bandlets": 0.5,
                                       "slope_wavelet-hard": 0.5, "calibration_error": calibration}})

    experiments = {"calpha-alpha1": experiment(0.0, 0.0, float("nan")),
                   "calpha-alpha2": experiment(0.5, 0.5, 0.041),
                   "calpha-alpha3": experiment(0.6, 2 / 3, 0.0001),
                   "calpha-alpha5": experiment(0.7, 0.8, -0.0001)}
    error = scorecard.compute(experiments)["calpha_slope_error"]
    assert error.value == pytest.approx((2 / 3 - 0.6 + 0.8 - 0.7) / 2)
    assert "mean over 2 alpha" in error.note
    assert "calpha-alpha1 (optimal slope 0, no calibration)" in error.note
    assert "calpha-alpha2 (fit range not calibrated: the Wiener filter's slope is off by +0.041)" in error.note
    gain = scorecard.compute(experiments)["calpha_slope_gain_over_bandlets"]
    assert gain.value == pytest.approx(((2 / 3 - 0.5) - (2 / 3 - 0.6) + (0.8 - 0.5) - (0.8 - 0.7)) / 2)
    base = scorecard.baseline_scores(experiments)["bandlets"]["calpha_slope_error"]
    assert base.value == pytest.approx((2 / 3 - 0.5 + 0.8 - 0.5) / 2)
    only_uncalibrated = scorecard.compute({"calpha-alpha1": experiment(0.0, 0.0, float("nan"))})
    assert only_uncalibrated["calpha_slope_error"].value is None
    assert only_uncalibrated["calpha_slope_error"].note.startswith("not scored: calpha-alpha1")


def test_every_reference_is_read_at_the_same_largest_n():
    agreement = {"r2_gaussian_N1_sigma0.1": 0.1, "r2_gaussian_N100_sigma0.1": 0.7,
                 "r2_equivariant-local_N1_sigma0.1": 0.2, "r2_gaussian_N100_sigma0.4": 0.9,
                 "best_patch_local_N100_sigma0.1": 5.0, "r2_local_N100_sigma0.1": None}
    values = scorecard.compute({"generalization": (_NoCells(), {"reference_agreement": agreement,
                                                                "paired_samples": {"n_star": None}})})
    assert values["reference_r2_gaussian"].value == 0.7
    assert values["reference_r2_equivariant-local"].value is None
    assert values["reference_r2_equivariant-local"].note == "not computed at N = 100"
    assert values["locality_patch_size"].value == 5.0
    assert values["n_star"].value is None and values["n_star"].note == "no pair done"


class _NoCells(dict):
    """A generalization Dataset without the variables of the cell scores."""


def test_the_scorecard_of_a_run_matches_its_cells_and_is_written_by_report(tmp_path, capsys):
    settings = {"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4},
                "model_variance": {"n_sigma": 3, "n_test": 4}}
    exp = gahb_bench.Experiment(name="generalization", image_classes=("faces",), n_train=(2, 4), subsets=(0, 1),
                                metrics=("denoising_curves", "model_variance"), baselines=("image-mean",),
                                metric_settings=settings)
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))
    undo = register_battery(gahb_bench.Battery(name="cards", version="1", presets={"tiny": preset}))
    try:
        spec = RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "cards", "tiny", str(tmp_path / "s.zarr"),
                       str(tmp_path / "ckpt"), quiet=True)
        assert not run(spec).failed
        ds = store.load_experiment(tmp_path / "s.zarr", "generalization").isel(arch=0)
        values = scorecard.compute(scorecard.read(tmp_path / "s.zarr"))
        largest = ds.sel(n_train=4, image_class="faces")
        excess = (largest.psnr_gap - largest.psnr_gap_floor).values.ravel()
        assert values["excess_gap_db"].value == pytest.approx(excess.mean())
        assert (values["excess_gap_db"].low, values["excess_gap_db"].high) == pytest.approx((excess.min(), excess.max()))
        smallest = ds.sel(n_train=2, image_class="faces")
        assert values["memorization_excess_gap_db"].value == pytest.approx(
            float((smallest.psnr_gap - smallest.psnr_gap_floor).mean()))
        assert values["model_variance_db"].value == pytest.approx(float(largest.mean_model_variance_db.mean()))
        assert main(["report", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "out")]) == 0
        written = json.loads((tmp_path / "out" / "scorecard.json").read_text())
        assert written["scores"]["excess_gap_db"]["value"] == pytest.approx(excess.mean())
        assert written["identity"]["battery"] == "cards"
        markdown = (tmp_path / "out" / "scorecard.md").read_text()
        assert "| Excess train−test gap at the largest N |" in markdown
        page = (tmp_path / "out" / "scorecard.html").read_text()  # self-contained: figures inline
        assert page.count('src="data:image/png;base64,') == len(list((tmp_path / "out").glob("*.png"))) > 0
        assert "<link" not in page and "<script" not in page and "Excess train−test gap" in page
        pngs = sorted(p.stem for p in (tmp_path / "out").glob("*.png"))  # and each figure as SVG beside it
        assert pngs == sorted(p.stem for p in (tmp_path / "out").glob("*.svg"))
        assert (tmp_path / "out" / f"{pngs[0]}.svg").read_text().lstrip().startswith("<?xml")
        run_figures = tmp_path / "s-figures"  # a run draws PNGs only
        assert list(run_figures.glob("*.png")) and not list(run_figures.glob("*.svg"))
        assert "Excess train−test gap at the largest N" in capsys.readouterr().out
        assert np.isfinite(values["excess_gap_db"].value)
    finally:
        undo()


def test_a_slope_above_the_optimum_is_not_rewarded_and_non_finite_values_become_null():
    slopes = {"slope": 0.99, "optimal_slope": 0.8, "slope_bandlets": 0.7,  # a near-identity network
              "calibration_error": 0.017}
    values = scorecard.compute({"calpha-alpha5": (None, {"psnr_slopes": slopes})})
    assert values["calpha_slope_gain_over_bandlets"].value == pytest.approx(0.1 - 0.19)
    data = scorecard.to_json({"model_variance_db": scorecard.Value(float("-inf"), note="N = 4")})
    assert data["model_variance_db"] == {"value": None, "low": None, "high": None, "note": "N = 4; not finite (-inf)"}


def test_the_locality_radius_is_read_at_sigma_04_and_energy_09_at_the_largest_n():
    import xarray as xr

    radius = np.zeros((1, 1, 2, 2, 1, 2, 2, 3))  # arch, class, N, subset, seed, sigma, energy, image
    radius[0, 0, 1, 0, 0, 1, 1] = [4.0, 5.0, 6.0]  # N = 10, S1, σ = 0.4, 90%: mean 5
    radius[0, 0, 1, 1, 0, 1, 1] = [6.0, 7.0, 8.0]  # S2: mean 7
    radius[0, 0, 1, :, 0, 0, 1] = 1.0  # σ = 0.1 (a network near the identity there): not read
    dims = ("arch", "image_class", "n_train", "subset", "seed")
    ds = xr.Dataset({"locality_radius": (dims + ("reference_sigma", "energy_fraction", "reference_image"), radius),
                     "status": (dims, np.ones((1, 1, 2, 2, 1)))},
                    coords={"image_class": ["photographs"], "n_train": [1, 10], "reference_sigma": [0.1, 0.4],
                            "energy_fraction": [0.5, 0.9]})
    value = scorecard._locality_radius(ds)
    # The interval resamples the replicates and the images: wider than the replicates' 5 to 7,
    # within the images' extremes 4 and 8.
    assert value.value == 6.0 and "N = 10" in value.note and "3 test images" in value.note
    assert 4.0 <= value.low < 5.0 and 7.0 < value.high <= 8.0
    flat = ds.copy(deep=True)  # every image of a replicate alike: only the replicates vary
    flat["locality_radius"][0, 0, 1, 0, 0, 1, 1] = 5.0
    flat["locality_radius"][0, 0, 1, 1, 0, 1, 1] = 7.0
    value = scorecard._locality_radius(flat)
    assert (value.value, value.low, value.high) == (6.0, 5.0, 7.0)
    missing = scorecard._locality_radius(ds.assign_coords(reference_sigma=[0.05, 0.1]))
    assert missing.value is None and "not measured at sigma 0.4" in missing.note


def _generalization(test_psnr_by_n: dict, change_by_n: dict):
    """A generalization experiment of one class, two subsets, seed 0: per N, the test curve and
    the loss change of both subsets' cells (training curves 1 dB above the input at σ = 0.01)."""
    import xarray as xr

    sigma = np.array([0.01, 0.1, 1.0])
    ns = sorted(test_psnr_by_n)
    shape = (1, 1, len(ns), 2, 1)
    psnr = np.empty(shape + (2, 3))
    for j, n in enumerate(ns):
        psnr[0, 0, j, :, 0, 0] = [41.0, 30.0, 20.0]
        psnr[0, 0, j, :, 0, 1] = test_psnr_by_n[n]
    change = np.array([change_by_n[n] for n in ns])[None, None, :, None, None] * np.ones(shape)
    dims = ("arch", "image_class", "n_train", "subset", "seed")
    return xr.Dataset(
        {"psnr": (dims + ("split", "sigma"), psnr), "status": (dims, np.full(shape, store.DONE)),
         "loss_change": (dims, change), "loss_change_se": (dims, np.full(shape, 0.01)),
         "psnr_gap": (dims, np.zeros(shape)), "psnr_gap_floor": (dims, np.zeros(shape))},
        coords={"arch": ["net"], "image_class": ["photographs"], "n_train": ns, "subset": [0, 1], "seed": [0],
                "split": ["train", "test"], "sigma": sigma, "psnr_in": ("sigma", -20 * np.log10(sigma))})


def test_undertrained_cells_are_counted_and_named_in_the_largest_n_scores():
    # N = 10: loss still falling 30% (flagged). N = 100: converged. N = 1000: converged loss, but
    # its test curve 2 dB below N = 100's at sigma 0.1 (flagged by the shortfall alone); its S2
    # cell is pending (not counted).
    ds = _generalization({10: [40.0, 29.0, 19.0], 100: [40.0, 29.0, 19.0], 1000: [40.0, 27.0, 19.0]},
                         {10: -0.3, 100: -0.01, 1000: -0.01})
    ds["status"].loc[{"n_train": 1000, "subset": 1}] = store.PENDING
    values = scorecard.compute({"generalization": (ds, {})})
    flagged = values["undertrained_fraction"]
    assert flagged.value == pytest.approx(3 / 5)
    assert flagged.note == ("3 of 5 cells: generalization/photographs N=10 S1 seed=0, generalization/photographs "
                            "N=10 S2 seed=0, generalization/photographs N=1000 S1 seed=0")
    # The largest N done on every subset is 100: its cells are not flagged, nothing is appended.
    assert "not trained" not in values["excess_gap_db"].note
    ds["status"].loc[{"n_train": 1000, "subset": 1}] = store.DONE
    values = scorecard.compute({"generalization": (ds, {})})
    assert values["undertrained_fraction"].value == pytest.approx(4 / 6)
    assert values["excess_gap_db"].note.endswith("N = 1000 not trained enough: S1 seed=0, S2 seed=0")
    # Cells without a loss profile are not judged.
    ds["loss_change"][:] = np.nan
    ds["psnr"].loc[{"n_train": 1000, "split": "test"}] = [40.0, 29.0, 19.0]
    value = scorecard.compute({"generalization": (ds, {})})["undertrained_fraction"]
    assert value.value is None and value.note == "no trained cell done; 6 without a loss profile (not judged)"
    assert scorecard.compute(_geometry({}))["undertrained_fraction"].value is None
