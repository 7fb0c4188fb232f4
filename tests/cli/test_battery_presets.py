"""Every preset of the standard battery is well-formed, and C^α experiments carry baselines."""

import types

import numpy as np
import pytest
import torch
import xarray as xr

import gahb_bench
from gahb_bench import summaries
from gahb_bench.battery import capped_grid, resolve_preset
from gahb_bench.batteries.standard import _calpha, _geometry
from gahb_bench.cli import main
from gahb_bench.errors import DataError, GahbError
from gahb_bench.registry import get_registry, register_extra
from gahb_bench.runner import RunSpec, prepare


def _spec(tmp_path, preset, battery="standard"):
    return RunSpec("tiny-cnn", {"depth": 4, "width": 16}, battery, preset, str(tmp_path / "s.zarr"),
                   str(tmp_path / "ckpt"), quiet=True)


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_presets_prepare_without_writing(tmp_path, preset):
    plan = prepare(_spec(tmp_path, preset))
    assert plan.cells and not (tmp_path / "s.zarr").exists()
    battery = get_registry().battery("standard")
    assert set(plan.templates) == {e.name for e in battery.presets[preset].experiments}


def test_the_gpu_preset_spans_memorization_to_all_the_40px_photographs(tmp_path):
    plan = prepare(_spec(tmp_path, "gpu"))
    # The 2,492 training patches of the bundled photographs at 40 px: two disjoint subsets of 1,246.
    assert plan.templates["generalization"].n_train.values.tolist() == [1, 10, 100, 1000, 1246]
    assert plan.identity["image_size"] == 40


def test_paper_preset_needs_prepared_celeba(tmp_path, monkeypatch):
    monkeypatch.setenv("GAHB_DATA_ROOT", str(tmp_path / "no-data"))
    with pytest.raises(DataError, match="gahb data prepare celeba"):
        prepare(_spec(tmp_path, "paper"))


def test_calpha_and_geometry_experiments_run_end_to_end(tmp_path, capsys):
    """The C^alpha experiment (baselines, slopes, GAHB matrix-free) and the geometry experiment at
    its own image size (10 px, the disks' smallest) and its own training budget."""
    small = {"sigmas": (0.1,), "n_images": 1, "n_eigen": 4, "n_show": 2}
    preset = gahb_bench.Preset(
        name="tiny", image_size=8, training=gahb_bench.Training(steps=20, batch_size=8),
        experiments=(_calpha(5.0, (4,), 8, fit=(0.05, 0.5), n_sigma=4, gahb={**small, "method": "matrix-free"}),
                     _geometry(16, 8, optimality={"n_sigma": 3, "n_test": 4}, tangent={"n_images": 1},
                               gahb=small, training=gahb_bench.Training(steps=6, batch_size=4), image_size=10)))

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(gahb_bench.Battery(name="mini", version="1", presets={"tiny": preset}))

    undo = register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name="mini")
    try:
        assert main(["run", "--arch", "tiny-cnn", "--battery", "mini", "--preset", "tiny", "--out",
                     str(tmp_path), "--quiet"]) == 0
    finally:
        undo()
    out = capsys.readouterr().out
    store = tmp_path / "tiny-cnn-mini-tiny.zarr"
    ds = xr.open_zarr(store, group="calpha-alpha5").load()
    assert (ds.status == 1).all() and (ds.baseline_status == 1).all() and (ds.metric_status == 1).all()
    assert list(ds.baseline.values) == ["wavelet-hard", "wavelet-soft", "bandlets", "image-mean"]
    assert np.isfinite(ds.baseline_psnr.values).all() and "bandlets" in out
    assert float(ds.optimal_slope.max()) == pytest.approx(0.8)  # paper-code alpha 5: regions C^4
    assert np.isfinite(ds.slope.values).all() and ds.sizes["row"] == 8
    params = ds.attrs["image_class_params"]
    assert '"convention": "paper-code"' in params and '"alpha": 5.0' in params

    geo = xr.open_zarr(store, group="geometry").load()
    assert geo.sizes["row"] == 10 and (geo.status == 1).all()
    status = geo.metric_status.isel(arch=0, n_train=0, subset=0, seed=0)
    skipped = {(c, m) for c in geo.image_class.values for m in geo.metric.values
               if int(status.sel(image_class=c, metric=m)) == 3}
    assert skipped == {("gaussian", "tangent_space"), ("sine_cone", "optimality")}
    assert int((status == 1).sum()) == 4 * 4 - 2
    assert np.isfinite(geo.optimality_gap_db.sel(image_class=["gaussian", "disks", "ray"]).values).all()
    assert np.isnan(geo.optimality_gap_db.sel(image_class="sine_cone").values).all()
    figures = {p.name for p in (tmp_path / "tiny-cnn-mini-tiny-figures").iterdir()}
    assert {"geometry-disks-tangent_space.png", "geometry-ray-optimality.png", "geometry-disks-gahb-spectra.png",
            "geometry-sine_cone-gahb-eigenvectors.png", "calpha-alpha5-calpha-psnr_slopes.png"} <= figures
    # A skipped metric draws nothing.
    assert "geometry-sine_cone-optimality.png" not in figures and "geometry-gaussian-tangent_space.png" not in figures
    # The geometry models trained with their experiment's budget, the C^alpha one with the preset's.
    # The experiment-level summaries: known values where there is one.
    calpha = summaries.read(store, "calpha-alpha5")["psnr_slopes"]
    assert calpha["optimal_slope"] == pytest.approx(0.8) and calpha["n_train"] == 4
    assert calpha["slope"] == pytest.approx(float(ds.slope.sel(denoiser="model").squeeze()))
    assert calpha["slope_low"] <= calpha["slope"] <= calpha["slope_high"]
    tangents = summaries.read(store, "geometry")["tangent_space"]
    for sigma in ("0.01", "0.04"):  # the ray's exact optimum lies in its tangent space
        assert tangents[f"tangent_energy_fraction_optimum_sigma{sigma}/ray"] == pytest.approx(1.0, abs=1e-9)
    assert not any("optimum" in k and k.endswith("/sine_cone") for k in tangents)  # no declared optimum
    # The chance level k/D at 10 px: disks 5-D, ray 1-D, sine cone 2-D.
    assert [tangents[f"chance_fraction/{c}"] for c in ("disks", "ray", "sine_cone")] == pytest.approx([0.05, 0.01, 0.02])
    gaps = summaries.read(store, "geometry")["optimality"]
    assert {"gap_db_model/disks", "gap_db_bandlets/gaussian", "kl_bound_wavelet-hard/ray"} <= set(gaps)
    assert not any(k.endswith("/sine_cone") for k in gaps)
    fields = [torch.load(p, weights_only=True)["fields"] for p in (tmp_path / "checkpoints").rglob("*.pt")]
    assert sorted((f["training"]["steps"], f["image_size"]) for f in fields) == [(6, 10)] * 4 + [(20, 8)]


def test_capped_grid_lowers_only_what_the_data_cannot_give():
    exp = gahb_bench.Experiment(name="e", image_classes=("faces",), n_train=(1, 10, 100, 1000), metrics=(),
                                cap_n_train=True)
    assert capped_grid(exp, 40) == (1, 10, 40)
    assert capped_grid(exp, None) == (1, 10, 100, 1000)
    assert capped_grid(exp, 5000) == (1, 10, 100, 1000)
    strict = gahb_bench.Experiment(name="e", image_classes=("faces",), n_train=(1, 100), metrics=())
    assert capped_grid(strict, 40) == (1, 100)  # refused later by prepare, never silently changed
    preset = gahb_bench.Preset(name="p", image_size=8, training=gahb_bench.Training(steps=1, batch_size=1),
                               experiments=(exp,))
    assert resolve_preset(preset, {"e": 40}).experiments[0].n_train == (1, 10, 40)


def _mini_battery(exp, name="capped"):
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(gahb_bench.Battery(name=name, version="1", presets={"tiny": preset}))

    return register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name=name)


def test_largest_n_is_capped_at_what_the_data_allows_and_recorded(tmp_path):
    # faces: 80 training faces, two disjoint subsets of at most 40; N = 10^5 asked, 40 used.
    exp = gahb_bench.Experiment(name="gen", image_classes=("faces",), n_train=(1, 100_000), metrics=(
        "denoising_curves",), metric_settings={"denoising_curves": {"n_sigma": 3, "n_test": 4}}, cap_n_train=True)
    undo = _mini_battery(exp)
    try:
        plan = prepare(_spec(tmp_path, "tiny", battery="capped"))
    finally:
        undo()
    assert sorted({c.n_train for c in plan.cells}) == [1, 40]
    assert plan.identity["n_train_grids"] == {"gen": [1, 40]}
    template = plan.templates["gen"]
    assert template.n_train.values.tolist() == [1, 40]
    assert template.attrs["n_train_requested"] == "[1, 100000]"


def test_without_the_cap_too_large_an_n_is_refused(tmp_path):
    exp = gahb_bench.Experiment(name="gen", image_classes=("faces",), n_train=(1, 100_000), metrics=(
        "denoising_curves",))
    undo = _mini_battery(exp, name="strict")
    try:
        with pytest.raises(GahbError, match="at most 40 images per subset"):
            prepare(_spec(tmp_path, "tiny", battery="strict"))
    finally:
        undo()


def test_paper_preset_caps_its_largest_n():
    paper = get_registry().battery("standard").presets["paper"]
    generalization = next(e for e in paper.experiments if e.name == "generalization")
    assert generalization.cap_n_train and max(generalization.n_train) == 100_000
    # The public code's largest CelebA subset after de-duplication:
    assert capped_grid(generalization, 99_325)[-1] == 99_325


def test_runs_with_other_params_or_flags_get_their_own_default_store():
    from gahb_bench.acceleration import Acceleration
    from gahb_bench.sweep import default_store_name

    defaults = {"depth": 4, "width": 16}
    assert default_store_name("tiny-cnn", defaults, defaults, "standard", "smoke") == "tiny-cnn-standard-smoke.zarr"
    assert (default_store_name("tiny-cnn", {"depth": 4, "width": 8}, defaults, "standard", "cpu",
                               Acceleration("bf16", True, False)) == "tiny-cnn-width8-bf16-channels-last-standard-cpu.zarr")
    odd = default_store_name("x", {"p": "a/b c"}, {}, "b", "p")
    assert odd == "x-pa_b_c-b-p.zarr"  # no path separator from a value
    long = default_store_name("x", {"p": "v" * 100}, {}, "b", "p")
    assert long.startswith("x-params") and len(long) < 40


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_every_c_alpha_fit_range_is_calibrated_for_its_class(preset):
    """The exact Wiener filter of a Gaussian field with the class's optimal rate s/(s+1), at the
    experiment's image size and the class's pixel standard deviation, fitted over the
    experiment's sigma grid, comes within the tolerance of s/(s+1): the range measures the rate,
    not the finite size. The only exception is a rate of 0 (paper-code alpha = 1), which no
    Gaussian field has: the scorecard leaves it out."""
    from gahb_bench.battery import metric_settings, size_of
    from gahb_bench.metrics import psnr_slopes
    from gahb_bench.metrics.psnr import settings_sigma_grid

    registry = get_registry()
    battery = registry.battery("standard")
    checked = 0
    for experiment in battery.presets[preset].experiments:
        if "psnr_slopes" not in experiment.metrics:
            continue
        (name,) = experiment.image_classes
        size = size_of(battery.presets[preset], experiment)
        dataset = registry.image_class(name).build(size, **experiment.image_class_params[name])
        optimal = dataset.optimal_psnr_slope()
        if optimal == 0:
            assert experiment.name == "calpha-alpha1"
            continue
        pixel_std = float(dataset.sample(64, np.random.default_rng(0)).std())
        sigmas = settings_sigma_grid(metric_settings(registry.metric("psnr_slopes"), experiment))
        error = psnr_slopes.calibration_slope(optimal, size, pixel_std, sigmas) - optimal
        assert abs(error) <= psnr_slopes.CALIBRATION_TOLERANCE, (experiment.name, error)
        checked += 1
    assert checked >= 1
