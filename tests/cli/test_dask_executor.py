"""The Dask executor runs the same cells to the same numbers as the in-process one."""

import numpy as np
import pytest
import xarray as xr

from helpers import gahb

pytest.importorskip("dask.distributed")


def test_dask_local_cluster_matches_in_process(tmp_path):
    # The generalization experiment: the one with pair tasks, whose models two workers train at once.
    args = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--experiment", "generalization", "--quiet"]
    # Dask's workers run one thread each (its nanny sets OMP_NUM_THREADS=1); the in-process run
    # gets the same, so float reductions happen in the same order and the numbers can be compared
    # exactly: 1500 training steps amplify a last-bit difference to 0.2 dB otherwise.
    local = gahb(*args, "--out", str(tmp_path / "local"), env={"OMP_NUM_THREADS": "1"})
    dask = gahb(*args, "--out", str(tmp_path / "dask"), "--executor", "dask", "--workers", "2")
    assert local.returncode == 0, local.stderr
    assert dask.returncode == 0, dask.stderr
    a, b = (xr.open_zarr(tmp_path / d / "tiny-cnn-standard-smoke.zarr", group="generalization").load()
            for d in ("local", "dask"))
    assert (b.status == 1).all() and (b.baseline_status == 1).all()
    # Baselines do not train: their numbers are identical whatever runs them.
    np.testing.assert_array_equal(b.baseline_psnr.values, a.baseline_psnr.values)
    np.testing.assert_array_equal(b.psnr.values, a.psnr.values)
