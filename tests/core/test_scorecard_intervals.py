"""The scorecard's memorization scores and its bootstrap intervals, on a tiny run: each score
is the statistic its summary or metric reports, and its interval holds it."""

import numpy as np
import pytest

import gahb_bench
from gahb_bench import scorecard
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from helpers import register_battery


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intervals")
    settings = {"reference_agreement": {"sigmas": (0.1, 0.4), "n_images": 6, "references": ("empirical", "local"),
                                        "patch_references": ("local",), "patch_sizes": (3, 5), "n_rows": 2},
                "memorization": {"n_sigma": 3, "n_test": 4},
                "paired_samples": {"n_samples": 8, "n_show": 2, "max_steps": 200, "h0": 0.2, "sigma_final": 0.3}}
    exp = gahb_bench.Experiment(name="generalization", image_classes=("faces",), n_train=(1, 3, 6), subsets=(0, 1),
                                metrics=("reference_agreement", "memorization", "paired_samples"),
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


def test_the_memorizer_distance_is_read_at_the_smallest_n_over_its_sigma_grid(tiny_run):
    (ds, _), values = tiny_run
    at_1 = ds.relative_distance_to_empirical.isel(arch=0, image_class=0, seed=0).sel(n_train=1)
    per_subset = at_1.mean("sigma").values
    value = values["memorizer_distance"]
    assert value.value == pytest.approx(per_subset.mean())
    assert (value.low, value.high) == pytest.approx((per_subset.min(), per_subset.max()))  # two replicates
    assert value.note.startswith("N = 1,") and "mean over 3 σ" in value.note


def test_scores_whose_experiment_lacks_their_metric_say_so():
    values = scorecard.compute({"generalization": ({}, {})})
    assert values["copy_fraction"].value is None and "paired_samples" in values["copy_fraction"].note
    assert values["memorizer_distance"].value is None and "memorization" in values["memorizer_distance"].note
