"""A cell that fails is recorded and the rest of the run goes on; `gahb report` reads a store."""

import types

import numpy as np
import torch
import xarray as xr

import gahb_bench
from gahb_bench.cli import main
from gahb_bench.registry import register_extra

from helpers import tree_snapshot


class DivergesInTraining(torch.nn.Module):
    """Passes the eval-mode probe, then produces NaN as soon as it is trained."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)

    def forward(self, y):
        out = y - self.conv(y)
        return out * float("nan") if self.training else out


def test_failed_cells_are_recorded_and_retried(tmp_path, capsys):
    @gahb_bench.hookimpl
    def gahb_register_architectures(register):
        register(gahb_bench.Architecture(name="nan-net", build=lambda c, s: DivergesInTraining()))

    undo = register_extra(types.SimpleNamespace(gahb_register_architectures=gahb_register_architectures),
                          name="nan")
    try:
        argv = ["run", "--arch", "nan-net", "--out", str(tmp_path), "--quiet"]
        assert main(argv) == 1
        captured = capsys.readouterr()
        # 4 models fail to train, and the 2 pair tasks find no checkpoint to compare.
        assert "6 failed" in captured.out and "training diverged" in captured.err
        store = tmp_path / "nan-net-standard-smoke.zarr"
        ds = xr.open_zarr(store, group="generalization").load()
        assert (ds.status == 2).all() and (ds.baseline_status == 1).all() and (ds.pair_status == 2).all()
        assert all("has no checkpoint" in str(m) for m in ds.pair_message.values.ravel())
        assert all("training diverged at step 0" in str(m) for m in ds.message.values.ravel())
        done_before = tree_snapshot(store)["generalization/baseline_psnr/c/0/0/0/0"]
        # The failed cells are tried again, the done ones are kept.
        assert main(argv[:-1]) == 1
        assert "9 cells, 3 already done, 6 to run" in capsys.readouterr().err
        assert tree_snapshot(store)["generalization/baseline_psnr/c/0/0/0/0"] == done_before
    finally:
        undo()


def test_report_redraws_figures(tmp_path, capsys):
    assert main(["run", "--arch", "tiny-cnn", "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    store = tmp_path / "tiny-cnn-standard-smoke.zarr"
    assert main(["report", str(store), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "photographs" in out and "bandlets" in out and "excess" in out
    figures = sorted(p.name.split("-photographs-")[1] for p in (tmp_path / "figs").glob("*.png"))
    assert figures == ["denoising_curves.png", "memorization.png", "model_variance.png", "paired_samples.png",
                       "paired_samples_grid.png"]
    # Every cell carries its gap floor and its convergence diagnostics.
    ds = xr.open_zarr(store, group="generalization").load()
    assert np.isfinite(ds.psnr_gap_floor.values).all() and np.isfinite(ds.floor_psnr.values).all()
    assert ds.loss_profile.sizes["training_progress"] == 10 and np.isfinite(ds.loss_profile.values).all()
    assert np.isfinite(ds.loss_change.values).all() and (ds.loss_change_se.values > 0).all()
    # The floor is the baseline's own train - test difference, on the same images as the network.
    floor = ds.floor_psnr.isel(arch=0)
    np.testing.assert_allclose(ds.psnr_gap_floor.isel(arch=0).values,
                               (floor.sel(split="train") - floor.sel(split="test")).mean("sigma").values)
    ds = xr.open_zarr(store, group="generalization")
    assert np.isfinite(ds.psnr.values).all()


def test_report_refuses_what_is_not_a_store(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("garbage")
    assert main(["report", str(tmp_path / "junk.zarr")]) == 2
    assert "not a readable Zarr store" in capsys.readouterr().err
