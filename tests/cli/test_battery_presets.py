"""Every preset of the standard battery is well-formed, and C^α experiments carry baselines."""

import types

import numpy as np
import pytest
import xarray as xr

import gahb_bench
from gahb_bench.batteries.standard import _calpha
from gahb_bench.cli import main
from gahb_bench.errors import DataError
from gahb_bench.registry import get_registry, register_extra
from gahb_bench.runner import RunSpec, prepare


def _spec(tmp_path, preset, battery="standard"):
    return RunSpec("tiny-cnn", {"depth": 4, "width": 16}, battery, preset, str(tmp_path / "s.zarr"),
                   str(tmp_path / "ckpt"), quiet=True)


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_presets_prepare_without_writing(tmp_path, preset):
    plan = prepare(_spec(tmp_path, preset))
    assert plan.cells and not (tmp_path / "s.zarr").exists()
    battery = get_registry().battery("standard")
    assert set(plan.templates) == {e.name for e in battery.presets[preset].experiments}


def test_paper_preset_needs_prepared_celeba(tmp_path, monkeypatch):
    monkeypatch.setenv("GAHB_DATA_ROOT", str(tmp_path / "no-data"))
    with pytest.raises(DataError, match="gahb data prepare celeba"):
        prepare(_spec(tmp_path, "paper"))


def test_calpha_experiment_runs_with_baselines(tmp_path, capsys):
    preset = gahb_bench.Preset(name="tiny", image_size=16, training=gahb_bench.Training(steps=20, batch_size=8),
                               experiments=(_calpha(2.0, (4,), 8, n_sigma=4),))

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
    ds = xr.open_zarr(tmp_path / "tiny-cnn-mini-tiny.zarr", group="calpha-alpha2").load()
    assert (ds.status == 1).all() and (ds.baseline_status == 1).all()
    assert list(ds.baseline.values) == ["wavelet-hard", "wavelet-soft", "bandlets"]
    assert np.isfinite(ds.baseline_psnr.values).all() and "bandlets" in out
    params = ds.attrs["image_class_params"]
    assert '"convention": "paper-code"' in params and '"alpha": 2.0' in params
