"""A run killed mid-way and rerun ends with the same values as an uninterrupted run,
and trains no model twice."""

import signal
import subprocess

import numpy as np
import xarray as xr

from helpers import GAHB, gahb

# Only the generalization experiment (the one with pair tasks): the other cells of the preset stay
# pending, which also checks that a selected run leaves them alone.
ARGS = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--experiment", "generalization"]


def _scores(out_dir):
    ds = xr.open_zarr(out_dir / "tiny-cnn-standard-smoke.zarr", group="generalization").load()
    return ds


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    whole = gahb(*ARGS, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    proc = subprocess.Popen([str(GAHB), *ARGS, "--out", str(tmp_path / "cut")], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    first_run = []
    for line in proc.stderr:
        first_run.append(line)
        if line.startswith("[4/9] done"):  # three baseline cells, then the first model
            proc.send_signal(signal.SIGKILL)  # no chance to clean up: as if the machine died
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    resumed = gahb(*ARGS, "--out", str(tmp_path / "cut"))
    assert resumed.returncode == 0, resumed.stderr
    assert "18 cells, 4 already done, 5 to run" in resumed.stderr

    trained = sum("(trained," in line for line in first_run + resumed.stderr.splitlines())
    assert trained == 4, (first_run, resumed.stderr)
    assert len(list((tmp_path / "cut" / "checkpoints").rglob("*.pt"))) == 4

    a, b = _scores(tmp_path / "whole"), _scores(tmp_path / "cut")
    assert (b.status == 1).all()
    for var in ("psnr", "mse", "psnr_gap", "baseline_psnr"):
        np.testing.assert_allclose(b[var].values, a[var].values, rtol=1e-6, err_msg=var)

    again = gahb(*ARGS, "--out", str(tmp_path / "cut"))
    assert "18 cells, 9 already done, 0 to run" in again.stderr and "(trained," not in again.stderr
    geometry = xr.open_zarr(tmp_path / "cut" / "tiny-cnn-standard-smoke.zarr", group="geometry").load()
    assert (geometry.status == 0).all()  # pending: not selected


def test_unknown_experiment_is_refused_before_anything_is_written(tmp_path):
    out = gahb("run", "--arch", "tiny-cnn", "--experiment", "geometri", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "has no experiment(s) 'geometri'; experiments: generalization, geometry, calpha-alpha5" in out.stderr
    assert not list(tmp_path.iterdir())
