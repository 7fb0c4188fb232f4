"""The reference_agreement metric inside a run: stored on a class with an exact optimum without a
patch grid (the ``cpu`` preset's geometry setting), and each reference output computed once per σ."""

import types

import numpy as np
import torch
import xarray as xr

import gahb_bench
from gahb_bench.image_classes.gaussian import GaussianDataset
from gahb_bench.metrics import reference_agreement as metric
from gahb_bench.metrics.context import MetricContext
from gahb_bench.registry import register_extra
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run


def _battery(settings):
    exp = gahb_bench.Experiment(name="refs", image_classes=("gaussian",), n_train=(64,), subsets=(0,),
                                metrics=("reference_agreement",), metric_settings={"reference_agreement": settings})
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(gahb_bench.Battery(name="refs", version="1", presets={"tiny": preset}))

    return register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name="refs-test")


def test_without_a_patch_grid_the_references_and_the_optimum_are_stored(tmp_path):
    settings = {"sigmas": (0.1, 0.4), "n_images": 3, "references": ("empirical", "gaussian", "local"),
                "patch_references": (), "n_rows": 2}
    undo = _battery(settings)
    try:
        outcome = run(RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "refs", "tiny", str(tmp_path / "s.zarr"),
                              str(tmp_path / "ckpt"), quiet=True))
    finally:
        undo()
    assert not outcome.failed
    ds = xr.open_zarr(tmp_path / "s.zarr", group="refs").load().isel(arch=0, image_class=0, n_train=0, subset=0, seed=0)
    assert ds.patch_agreement.shape == (2, 0, 4, 3) and ds.best_patch_size.shape == (2, 0)
    assert np.isfinite(ds.agreement.values).all()
    # The class declares its optimum: the network's and every reference's distance to it are there.
    assert np.isfinite(ds.optimum_agreement.values).all()
    # The gaussian reference of 64 images is closer to the class's Wiener optimum than the
    # memorizer of the same 64 images (at σ = 0.4, where the memorizer snaps to one image).
    opt = ds.optimum_agreement.sel(reference_sigma=0.4).median("reference_image")
    assert float(opt.sel(compared="gaussian")) > float(opt.sel(compared="empirical"))


def test_each_reference_output_is_computed_once_per_sigma(monkeypatch):
    ds = GaussianDataset(8)
    train = ds.train_subset(50, subset=0, seed=0)
    ctx = MetricContext(model=torch.nn.Identity(), train_images=train, dataset=ds, data_seed=0,
                        settings={**metric.DEFAULTS, "sigmas": (0.1, 0.2), "n_images": 2, "n_rows": 2,
                                  "references": ("empirical", "local"), "patch_references": ("local",),
                                  "patch_sizes": (3, 5, 7)},
                        seed=0, device=torch.device("cpu"))
    calls = []
    original = MetricContext.reference

    def counting(self, name, **params):
        f = original(self, name, **params)

        def denoise(noisy, sigma):
            calls.append((name, params.get("patch_size")))
            return f(noisy, sigma)
        return denoise

    monkeypatch.setattr(MetricContext, "reference", counting)
    out = metric.compute(ctx)
    # Per σ: empirical once, local at its default P = 5 once (the grid reuses it), P = 3 and 7.
    assert sorted(calls, key=str) == sorted([("empirical", None), ("local", None), ("local", 3), ("local", 7)] * 2,
                                            key=str)
    # The grid's P = 5 entry is the agreement of the default local reference.
    np.testing.assert_array_equal(out["patch_agreement"][:, 0, 1], out["agreement"][:, 1])
