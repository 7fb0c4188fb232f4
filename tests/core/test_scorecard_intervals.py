"""The scorecard's memorization scores and its bootstrap intervals, on a tiny run: each score
is the statistic its summary or metric reports, and its interval holds it."""

import numpy as np
import pytest

import gahb_bench
from gahb_bench import bootstrap, scorecard
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from helpers import register_battery


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intervals")
    settings = {"reference_agreement": {"sigmas": (0.1, 0.4), "n_images": 6, "references": ("empirical", "local"),
                                        "patch_references": ("local",), "patch_sizes": (3, 5), "n_rows": 2},
                "memorization": {"n_sigma": 3, "n_test": 4}, "model_variance": {"n_sigma": 3, "n_test": 5},
                "paired_samples": {"n_samples": 8, "n_show": 2, "max_steps": 200, "h0": 0.2, "sigma_final": 0.3}}
    exp = gahb_bench.Experiment(name="generalization", image_classes=("faces",), n_train=(1, 3, 6), subsets=(0, 1),
                                metrics=("reference_agreement", "memorization", "model_variance", "paired_samples"),
                                metric_settings=settings)
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))
    undo = register_battery(gahb_bench.Battery(name="intervals", version="1", presets={"tiny": preset}))
    try:
        path = tmp / "s.zarr"
        assert not run(RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "intervals", "tiny", str(path),
                               str(tmp / "ckpt"), quiet=True)).failed
    finally:
        undo()
    experiments = scorecard.read(path)
    return experiments["generalization"], scorecard.compute(experiments)


def test_agreement_and_p_star_are_the_summary_values_inside_their_intervals(tiny_run):
    (ds, summary), values = tiny_run
    agreement = summary["reference_agreement"]
    for key, score in (("r2_local", "reference_r2_local"), ("r2_empirical", "reference_r2_empirical"),
                       ("best_patch_local", "locality_patch_size")):
        value = values[score]
        stored = agreement.get(f"{key}_N6_sigma0.1")
        data, statistic = scorecard._agreement_data(ds, key, 6)
        assert data.shape[0] == 2 and data.shape[-1] == 6  # S1, S2; six test images
        full = statistic(data, np.arange(2), np.arange(6))
        if stored is None:  # P* tied on these images
            assert value.value is None
            continue
        assert full == pytest.approx(stored)  # the bootstrap's statistic is the summary's
        assert value.value == pytest.approx(stored)
        assert "2 replicates" in value.note and "6 test images" in value.note
        if value.low is not None:
            assert value.low <= value.value + 1e-12 and value.value - 1e-12 <= value.high


def test_the_copy_fraction_is_read_at_the_smallest_n_with_two_training_images(tiny_run):
    (ds, _), values = tiny_run
    stored = ds.copy_fraction_mean.isel(arch=0, image_class=0, seed=0)
    assert not np.isfinite(float(stored.sel(n_train=1)))  # one training image: no copy criterion
    n = min(int(n) for n in (3, 6) if np.isfinite(float(stored.sel(n_train=n))))  # a model may draw no sample
    value = values["copy_fraction"]
    assert value.value == pytest.approx(float(stored.sel(n_train=n))) and value.note.startswith(f"N = {n},")
    assert 0.0 <= value.low <= value.value <= value.high <= 1.0
    assert "8 samples" in value.note


def test_the_memorizer_distance_is_read_at_the_smallest_n_from_2_and_sigma_01(tiny_run):
    (ds, _), values = tiny_run
    assert np.allclose(ds.sigma.values, [0.01, 0.1, 1.0])
    at = ds.relative_distance_to_empirical.isel(arch=0, image_class=0, seed=0).sel(sigma=0.1)
    per_subset = at.sel(n_train=3).values  # N = 1 skipped: f_1 is a constant
    value = values["memorizer_distance"]
    assert value.value == pytest.approx(per_subset.mean())
    assert (value.low, value.high) == pytest.approx((per_subset.min(), per_subset.max()))  # two replicates: a range
    assert value.note.startswith("N = 3,") and "range over 2 replicates" in value.note
    assert f"at the largest N (6): {scorecard.number(float(at.sel(n_train=6).mean()))}" in value.note


def test_the_model_variance_is_the_stored_headline_inside_its_interval_over_test_images(tiny_run):
    (ds, _), values = tiny_run
    per_image = ds.model_variance_per_image.isel(arch=0, image_class=0, seed=0).sel(n_train=6)
    assert per_image.sizes["variance_image"] == 5
    np.testing.assert_allclose(per_image.mean("variance_image"),
                               ds.model_variance.isel(arch=0, image_class=0, seed=0).sel(n_train=6), rtol=1e-12)
    value = values["model_variance_db"]
    stored = float(ds.mean_model_variance_db.isel(arch=0, image_class=0, seed=0).sel(n_train=6))
    assert value.value == pytest.approx(stored)  # the bootstrap's statistic is the stored headline
    assert value.low < value.value < value.high  # five images that differ: a proper interval
    assert value.note.startswith("N = 6,") and "1 pair(s)" in value.note and "5 test images" in value.note


def _pairs(ratios, n_train=(10,), threshold=None):
    """A generalization Dataset of one class whose paired_samples pairs are done, with copy
    ratios ``ratios`` (N, seed, model, sample)."""
    import json

    import xarray as xr

    ratios = np.asarray(ratios, dtype=np.float64)[None, None]
    dims = ("arch", "image_class", "n_train", "seed")
    status = np.ones(ratios.shape[:4] + (1,))
    ds = xr.Dataset({"copy_ratio": (dims + ("subset", "sample"), ratios),
                     "pair_metric_status": (dims + ("pair_metric",), status)},
                    coords={"image_class": ["photographs"], "n_train": list(n_train), "pair_metric": ["paired_samples"]})
    if threshold is not None:
        ds.attrs["metric_settings"] = json.dumps({"paired_samples": {"copy_threshold": threshold}})
    return ds


def test_the_two_models_samples_are_resampled_together():
    # Sample i is a copy for exactly one of the two models: any resample of the sample indices,
    # drawn for both, has half copies; drawn for each model on its own, it would spread.
    first = np.tile([0.1, 0.9], 32)
    value = scorecard._copy_fraction(_pairs([[[first, first[::-1]]]]), {})
    assert (value.value, value.low, value.high) == (0.5, 0.5, 0.5)
    shifted = scorecard._copy_fraction(_pairs([[[first, first[::-1]]]], threshold=0.05), {})
    assert shifted.value == 0.0 and "ratio below 0.05" in shifted.note


def test_a_rare_copy_count_gets_the_exact_binomial_interval_too():
    none = scorecard._copy_fraction(_pairs([[[np.full(64, 0.9), np.full(64, 0.8)]]]), {})
    assert (none.value, none.low) == (0.0, 0.0)
    assert none.high == pytest.approx(1 - 0.025 ** (1 / 64))  # 0.056: not 0
    assert "joined with the exact binomial 95% interval of 0 in 64 samples" in none.note
    every = scorecard._copy_fraction(_pairs([[[np.full(64, 0.1), np.full(64, 0.2)]]]), {})
    assert (every.value, every.high) == (1.0, 1.0) and every.low == pytest.approx(0.025 ** (1 / 64))
    one = np.full(64, 0.9)
    one[0] = 0.1  # one copy in one model: a bootstrap alone would end near 0.023
    rare = scorecard._copy_fraction(_pairs([[[one, np.full(64, 0.9)]]]), {})
    assert rare.high >= bootstrap.clopper_pearson(1, 64)[1] > 0.08
    failed = np.full(64, 0.9)
    failed[:4] = np.nan  # failed samples: left out, and counted in the note
    some = scorecard._copy_fraction(_pairs([[[failed, np.full(64, 0.2)]]]), {})
    assert some.value == pytest.approx(0.5) and "4 failed samples left out" in some.note


def test_the_copy_fraction_skips_n_without_two_images_and_says_which_n_it_passed():
    ratios = np.stack([np.full((1, 2, 8), np.nan), np.full((1, 2, 8), 0.1), np.full((1, 2, 8), 0.9)])
    ds = _pairs(ratios, n_train=(1, 5, 7))  # N = 1: no ratio
    ds["pair_metric_status"].loc[{"n_train": 7}] = 0  # pending: N = 5 is the largest done
    value = scorecard._copy_fraction(ds, {})
    assert value.value == 1.0 and value.note.startswith("N = 5 (the only N ≥ 2 done, the largest")
    ds = _pairs(np.stack([np.full((1, 2, 8), 0.9), np.full((1, 2, 8), 0.1), np.full((1, 2, 8), 0.9)]),
                n_train=(3, 5, 7))
    ds["pair_metric_status"].loc[{"n_train": 3}] = 0  # pending
    value = scorecard._copy_fraction(ds, {})
    assert value.value == 1.0 and value.note.startswith("N = 5, ") and value.note.endswith("N = 3 not done")
    ratios = np.stack([np.full((1, 2, 8), np.nan), np.full((1, 2, 8), 0.1), np.full((1, 2, 8), 0.9)])
    value = scorecard._copy_fraction(_pairs(ratios, n_train=(2, 5, 7)), {})  # N = 2: every sample failed
    assert value.value == 1.0 and "at N = 2 a model drew no sample" in value.note


def test_scores_at_the_smallest_n_are_not_given_where_the_grid_has_no_small_n_from_2():
    # smoke's grid, N = 1 and all: the smallest N ≥ 2 is the largest, a generalizing network;
    # its value under "at the smallest N" would mislabel it, so the score is None, the value noted.
    ratios = np.stack([np.full((1, 2, 8), np.nan), np.full((1, 2, 8), 0.9)])
    value = scorecard._copy_fraction(_pairs(ratios, n_train=(1, 20911)), {})
    assert value.value is None and value.low is None
    assert "no N between 2 and its largest (N = 1, 20911)" in value.note and "at N = 20911, the largest: 0 [" in value.note
    import xarray as xr

    dims = ("arch", "image_class", "n_train", "subset", "seed")
    distance = np.full((1, 1, 2, 2, 1, 2), 0.7)
    ds = xr.Dataset({"relative_distance_to_empirical": (dims + ("sigma",), distance),
                     "metric_status": (dims + ("metric",), np.ones((1, 1, 2, 2, 1, 1)))},
                    coords={"image_class": ["photographs"], "n_train": [1, 20911], "sigma": [0.05, 0.2],
                            "metric": ["memorization"]})
    far = scorecard._memorizer_distance(ds, {})
    assert far.value is None and far.note.endswith("at N = 20911, the largest: 0.7 (σ = 0.1)")
    kept = scorecard._memorizer_distance(ds.assign_coords(n_train=[2, 20911]), {})
    assert kept.value == pytest.approx(0.7) and kept.note.startswith("N = 2,")
    # A grid with a small N ≥ 2 that is only not done yet keeps the value at the next N, noted.
    ratios = np.stack([np.full((1, 2, 8), np.nan), np.full((1, 2, 8), 0.1), np.full((1, 2, 8), 0.9)])
    pending = _pairs(ratios, n_train=(1, 10, 100))
    pending["pair_metric_status"].loc[{"n_train": 10}] = 0
    value = scorecard._copy_fraction(pending, {})
    assert value.value == 0.0 and value.note.startswith("N = 100 (the only N ≥ 2 done") and "N = 10 not done" in value.note


def test_the_memorizer_distance_is_interpolated_in_log_sigma():
    import xarray as xr

    dims = ("arch", "image_class", "n_train", "subset", "seed")
    distance = np.array([[0.2, 0.6], [0.4, 0.8]])[None, None, None, :, None]  # S1, S2 at σ = 0.05, 0.2
    ds = xr.Dataset({"relative_distance_to_empirical": (dims + ("sigma",), distance),
                     "metric_status": (dims + ("metric",), np.ones((1, 1, 1, 2, 1, 1)))},
                    coords={"image_class": ["photographs"], "n_train": [3], "sigma": [0.05, 0.2],
                            "metric": ["memorization"]})
    value = scorecard._memorizer_distance(ds, {})  # σ = 0.1 is the log-midpoint of 0.05 and 0.2
    assert (value.value, value.low, value.high) == pytest.approx((0.5, 0.4, 0.6))
    ds["relative_distance_to_empirical"][:] = np.nan
    assert scorecard._memorizer_distance(ds, {}).note.endswith("no replicate computed")
    far = scorecard._memorizer_distance(ds.assign_coords(sigma=[0.2, 0.4]), {})
    assert far.value is None and "does not hold 0.1" in far.note


def test_image_intervals_resample_the_images_and_count_the_tied_resamples():
    images = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])  # replicates alike, images not
    low, high, dropped = scorecard._image_interval(images, scorecard._mean_of_means)
    assert low < 1.5 < high and dropped == 0.0
    # A statistic undefined when image 0 is drawn first: a quarter of the resamples are dropped.
    low, high, dropped = scorecard._image_interval(images, lambda d, r, i: np.nan if i[0] == 0 else 1.0)
    assert dropped == pytest.approx(0.25, abs=0.03) and (low, high) == (1.0, 1.0)


def test_scores_whose_experiment_lacks_their_metric_say_so():
    values = scorecard.compute({"generalization": ({}, {})})
    assert values["copy_fraction"].value is None and "paired_samples" in values["copy_fraction"].note
    assert values["memorizer_distance"].value is None and "memorization" in values["memorizer_distance"].note


def test_five_replicates_get_a_bootstrap_interval_and_fewer_their_range():
    four = scorecard._over_replicates(np.array([1.0, 2.0, 3.0, 10.0]), "N = 4")
    assert (four.low, four.high) == (1.0, 10.0) and "range over 4 replicates" in four.note
    five = scorecard._over_replicates(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), "N = 4")
    assert "95% bootstrap interval over 5 replicates" in five.note
    assert 1.0 < five.low < 4.0 < five.high < 10.0  # a bootstrap of the mean, inside the min–max
    identical = scorecard._over_replicates(np.array([-np.inf, -3.0]), "N = 4")
    assert identical.value == -np.inf and identical.note == "N = 4; 1 of 2 replicates not finite"


def test_p_star_counts_the_resamples_where_a_replicate_tied():
    # (replicate, patch size, image): replicate 0 agrees as well at every size (a tie), replicate
    # 1 best at P = 5
    data = np.stack([np.zeros((3, 4)), np.array([0.1, 0.9, 0.2])[:, None].repeat(4, axis=1)])
    p_star = scorecard.PStar([3, 5, 7])
    assert p_star(data, np.array([0, 1]), np.arange(4)) == 5.0  # the tied replicate is left out of the mean
    assert np.isnan(p_star(data, np.array([0, 0]), np.arange(4)))
    assert p_star(data, np.array([1, 1]), np.arange(4)) == 5.0
    assert (p_star.calls, p_star.tied) == (3, 2)
    _, _, dropped = scorecard._image_interval(data, scorecard.PStar([3, 5, 7]))
    assert dropped == pytest.approx(0.25, abs=0.03)  # both replicates drawn as the tied one
