"""The template plugin, pip-installed into the test environment, runs through `gahb run`."""

import json

import xarray as xr

from helpers import gahb


def test_template_is_listed_by_gahb_plugins():
    out = gahb("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["template"]["distribution"] == "gahb-plugin-template"
    assert plugins["template"]["hooks"] == ["gahb_register_architectures"]
    assert plugins["gahb_bench.architectures.unet"]["distribution"] == "gahb-bench"
    listed = gahb("list", "architectures")
    assert "tiny-cnn" in listed.stdout and "unet" in listed.stdout
    baselines = json.loads(gahb("list", "baselines", "--json").stdout)
    assert {b["name"] for b in baselines} == {"wavelet-hard", "wavelet-soft", "bandlets", "image-mean"}


def test_allow_list_hides_the_template():
    out = gahb("list", "architectures", env={"GAHB_LOAD_PLUGINS": ""})
    assert out.returncode == 0 and "tiny-cnn" not in out.stdout


def test_template_runs_the_smoke_battery_end_to_end(tmp_path):
    out = gahb("run", "--arch", "tiny-cnn", "--preset", "smoke", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    store = tmp_path / "tiny-cnn-standard-smoke.zarr"
    ds = xr.open_zarr(store, group="generalization").isel(arch=0).load()
    assert (ds.status == 1).all()
    assert ds.psnr.notnull().all()
    # Denoising helps on the test set at high noise (output PSNR above input PSNR at σ = 1).
    assert float(ds.psnr.sel(split="test").isel(sigma=-1).min()) > float(ds.psnr_in[-1]) + 5
    # The gap is the σ-average of train − test, as documented.
    diff = (ds.psnr.sel(split="train") - ds.psnr.sel(split="test")).mean("sigma")
    assert abs(ds.psnr_gap - diff).max() < 1e-9
    # The baselines' curves sit beside the network's: done, and better than the noisy input.
    assert (ds.baseline_status == 1).all() and list(ds.baseline.values) == ["wavelet-hard", "bandlets", "image-mean"]
    assert (ds.baseline_psnr.isel(sigma=-1) > ds.psnr_in[-1] + 5).all()
    figures = list((tmp_path / "tiny-cnn-standard-smoke-figures").glob("*.png"))
    assert figures and figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "photographs" in out.stdout and "figure:" in out.stdout
