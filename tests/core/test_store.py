"""The Zarr store: preallocated template, one region per cell, status, identity, digest."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from gahb_bench import store
from gahb_bench.battery import CELL_DIMS, Cell
from gahb_bench.errors import StoreError
from gahb_bench.runner import RunSpec, prepare, start


def _spec(tmp_path, arch="tiny-cnn", params=None, preset="smoke"):
    return RunSpec(arch=arch, arch_params=params or {"depth": 4, "width": 16}, battery="standard",
                   preset=preset, store=str(tmp_path / "run.zarr"), checkpoints=str(tmp_path / "ckpt"), quiet=True)


@pytest.fixture
def created(tmp_path):
    plan = prepare(_spec(tmp_path))
    start(plan)
    return plan, tmp_path / "run.zarr"


def test_template_dims_coords_and_chunks(created):
    plan, path = created
    ds = xr.open_zarr(path, group="generalization")
    assert ds.psnr.dims == ("arch",) + CELL_DIMS + ("split", "sigma")
    assert list(ds.n_train.values) == [1, 20911] and list(ds.split.values) == ["train", "test"]
    assert ds.sizes["sigma"] == 8 and ds.psnr_in.dims == ("sigma",)
    assert ds.psnr.attrs["units"] == "dB"
    assert bool(ds.psnr.isnull().all()) and int(ds.status.sum()) == 0
    array = zarr.open_group(str(path), mode="r")["generalization/psnr"]
    assert array.chunks == (1, 1, 1, 1, 1, 2, 8)  # one cell per chunk: writers never share one
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    assert attrs["arch"] == "tiny-cnn" and attrs["battery"] == "standard" and attrs["n_parameters"] > 0
    assert len(attrs["runs"]) == 1 and attrs["runs"][0]["torch_version"] and attrs["runs"][0]["started"]
    assert json.loads(attrs["identity"])["arch_plugin_version"] == "0.1.0"


def test_region_write_touches_only_its_cell(created):
    plan, path = created
    cell = Cell("generalization", "photographs", 20911, 0, 0)
    template = plan.templates["generalization"]
    values = np.arange(16, dtype=float).reshape(2, 8)
    store.write_cell(path, template, cell, {"psnr": values, "status": store.DONE})
    ds = xr.open_zarr(path, group="generalization").isel(arch=0)
    np.testing.assert_array_equal(ds.psnr.sel(n_train=20911, subset=0, seed=0, image_class="photographs"), values)
    assert int(ds.psnr.notnull().sum()) == 16
    assert store.done_cells(path, "generalization") == {("photographs", 20911, 0, 0)}
    with pytest.raises(StoreError, match="shape"):
        store.write_cell(path, template, cell, {"psnr": np.zeros(3)})


def test_resume_requires_the_same_run(created, tmp_path):
    plan, path = created
    again = prepare(_spec(tmp_path))  # same run: accepted, and recorded as a second invocation
    assert again.done == set()
    start(again)
    assert len(zarr.open_group(str(path), mode="r").attrs["runs"]) == 2
    with pytest.raises(StoreError, match="different run.*arch: store has 'tiny-cnn', this run 'unet'"):
        prepare(_spec(tmp_path, arch="unet", params={"blocks": "auto", "width": 4}))
    with pytest.raises(StoreError, match="arch_params"):
        prepare(_spec(tmp_path, params={"depth": 3, "width": 16}))


def test_creation_is_atomic(tmp_path, monkeypatch):
    plan = prepare(_spec(tmp_path))

    def dies(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", dies)
    with pytest.raises(StoreError, match="cannot create the store.*disk full"):
        start(plan)
    assert list(tmp_path.iterdir()) == []  # no half-made store blocks the path
    monkeypatch.undo()
    start(plan)
    assert store.read_identity(tmp_path / "run.zarr")["arch"] == "tiny-cnn"


def test_corrupt_and_foreign_stores_are_refused(tmp_path):
    bad = tmp_path / "run.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a readable Zarr store"):
        prepare(_spec(tmp_path))
    (bad / "zarr.json").unlink()
    zarr.open_group(str(bad), mode="w")
    with pytest.raises(StoreError, match="not a gahb-bench results store"):
        prepare(_spec(tmp_path))


def test_digest_changes_with_any_score(created):
    plan, path = created
    before = store.scores_digest(path)
    assert store.scores_digest(path) == before
    cell = Cell("generalization", "photographs", 1, 0, 0)
    store.write_cell(path, plan.templates["generalization"], cell, {"psnr_gap": 1.25})
    after = store.scores_digest(path)
    assert after != before
    store.write_cell(path, plan.templates["generalization"], cell, {"train_seconds": 3.0})
    assert store.scores_digest(path) == after  # timings are not scores


def test_finalize_consolidates_and_records(created):
    plan, path = created
    digest = store.finalize(path, {"finished": "now"})
    root = json.loads((path / "zarr.json").read_text())
    assert "consolidated_metadata" in root and root["attributes"]["scores_digest"] == digest
