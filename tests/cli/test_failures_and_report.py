"""A cell that fails is recorded and the rest of the run goes on; `gahb report` reads a store."""

import dataclasses
import types

import numpy as np
import torch
import xarray as xr

import gahb_bench
from gahb_bench.cli import main
from gahb_bench.registry import get_registry, register_extra

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
        argv = ["run", "--arch", "nan-net", "--experiment", "generalization", "--out", str(tmp_path), "--quiet"]
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
        err = capsys.readouterr().err
        assert "18 cells, 3 already done, 6 to run" in err
        assert "N=1 S1 seed=0 (no model, " in err and "loaded checkpoint" not in err  # it never had one
        assert tree_snapshot(store)["generalization/baseline_psnr/c/0/0/0/0"] == done_before
    finally:
        undo()


def test_report_redraws_figures(tmp_path, capsys, monkeypatch):
    assert main(["run", "--arch", "tiny-cnn", "--out", str(tmp_path), "--quiet"]) == 0
    store = tmp_path / "tiny-cnn-standard-smoke.zarr"
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == (
        f"next: gahb report {store} --out DIR (the scorecard and every figure); gahb publish {store} --leaderboard "
        "DIR (a leaderboard entry, once every experiment of the preset is done)")
    assert main(["report", str(store), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "photographs" in out and "bandlets" in out and "excess" in out
    names = {p.name for p in (tmp_path / "figs").glob("*.png")}
    figures = sorted(n.split("-photographs-")[1] for n in names if "-photographs-" in n)
    assert figures == ["denoising_curves.png", "locality.png", "memorization.png", "model_variance.png",
                       "paired_samples.png", "paired_samples_grid.png", "reference-agreement.png",
                       "reference-examples.png"]
    # The issue-9 figures: gaps where the class has an optimum, tangents where it has a tangent
    # space, spectra and eigenvectors everywhere, slopes on C^alpha.
    expected = ({f"geometry-{c}-optimality.png" for c in ("gaussian", "disks", "ray")}
                | {f"geometry-{c}-tangent_space.png" for c in ("disks", "ray", "sine_cone")}
                | {f"geometry-{c}-gahb-{k}.png" for c in ("gaussian", "disks", "ray", "sine_cone")
                   for k in ("spectra", "eigenvectors")}
                | {"calpha-alpha5-calpha-psnr_slopes.png", "calpha-alpha5-calpha-gahb-spectra.png"})
    assert expected <= names, expected - names
    assert "geometry-sine_cone-optimality.png" not in names

    # A metric whose figure fails costs that figure only: a warning, the others, exit 0.
    registry = get_registry()
    real = registry.metric

    def broken_curves(name):
        metric = real(name)
        return dataclasses.replace(metric, plot=lambda ds, outdir: 1 / 0) if name == "denoising_curves" else metric

    monkeypatch.setattr(registry, "metric", broken_curves)
    assert main(["report", str(store), "--out", str(tmp_path / "figs2")]) == 0
    err = capsys.readouterr().err
    assert "figures of metric 'denoising_curves' (experiment 'geometry') failed: ZeroDivisionError" in err
    redrawn = {p.name for p in (tmp_path / "figs2").glob("*.png")}
    assert redrawn == {n for n in names if not n.endswith("-denoising_curves.png")}
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


def test_the_summary_of_an_experiment_not_run_says_so_instead_of_not_reached(tmp_path, capsys):
    argv = ["run", "--arch", "tiny-cnn", "--experiment", "calpha-alpha5", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # generalization was not selected: one line, no table of pending rows, no summary
    assert "generalization: no cell done yet (not run, or run with --experiment naming others)" in out
    assert "summary of paired_samples" not in out and "n_star = not reached" not in out
    assert "summary of psnr_slopes: calibration_error = " in out  # calpha's own summary, as computed
