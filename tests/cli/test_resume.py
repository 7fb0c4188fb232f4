"""A run killed mid-way and rerun ends with the same values as an uninterrupted run,
and trains no model twice."""

import signal
import subprocess
import time

import numpy as np
import pytest
import xarray as xr

from helpers import GAHB, gahb

# Only the generalization experiment (the one with pair tasks): the other cells of the preset stay
# pending, which also checks that a selected run leaves them alone.
ARGS = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--experiment", "generalization"]


def _scores(out_dir):
    ds = xr.open_zarr(out_dir / "tiny-cnn-standard-smoke.zarr", group="generalization").load()
    return ds


def _done_cells(out_dir):
    """Cells of every kind recorded as done in the store (what a rerun counts as already done)."""
    ds = _scores(out_dir)
    return sum(int((ds[v] == 1).sum()) for v in ("status", "pair_status", "baseline_status"))


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    run = gahb(*ARGS, "--out", str(out))
    assert run.returncode == 0, run.stderr
    return _scores(out)


def test_kill_and_resume_matches_uninterrupted(tmp_path, whole):
    proc = subprocess.Popen([str(GAHB), *ARGS, "--out", str(tmp_path / "cut")], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    first_run = []
    for line in proc.stderr:
        first_run.append(line)
        if line.startswith("[4/9] done"):  # three baseline cells, then the first model
            proc.send_signal(signal.SIGKILL)  # no chance to clean up: as if the machine died
            break
    first_run += proc.stderr.read().splitlines()  # a cell may have finished before the kill landed
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    done = _done_cells(tmp_path / "cut")
    assert done >= 4
    resumed = gahb(*ARGS, "--out", str(tmp_path / "cut"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"18 cells, {done} already done, {9 - done} to run" in resumed.stderr

    trained = sum("(trained" in line for line in first_run + resumed.stderr.splitlines())
    assert trained == 4, (first_run, resumed.stderr)
    assert len(list((tmp_path / "cut" / "checkpoints").rglob("*.pt"))) == 4

    a, b = whole, _scores(tmp_path / "cut")
    assert (b.status == 1).all()
    for var in ("psnr", "mse", "psnr_gap", "baseline_psnr"):
        np.testing.assert_allclose(b[var].values, a[var].values, rtol=1e-6, err_msg=var)

    again = gahb(*ARGS, "--out", str(tmp_path / "cut"))
    assert "18 cells, 9 already done, 0 to run" in again.stderr and "(trained," not in again.stderr
    geometry = xr.open_zarr(tmp_path / "cut" / "tiny-cnn-standard-smoke.zarr", group="geometry").load()
    assert (geometry.status == 0).all()  # pending: not selected


def _snapshots(out):
    """The snapshot files under ``out/checkpoints`` (none while the folder does not exist)."""
    try:
        return list((out / "checkpoints").glob("*/*.partial.pt"))
    except OSError:
        return []


def test_killed_mid_training_resumes_from_its_snapshot(tmp_path, whole):
    # A snapshot every 0.001 min = 60 ms of training; the run is frozen as soon as one
    # exists, and killed if its training is still going on (no trained model saved yet).
    out = tmp_path / "cut"
    args = [*ARGS, "--out", str(out), "--snapshot-minutes", "0.001"]
    proc = subprocess.Popen([str(GAHB), *args], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if _snapshots(out):
            proc.send_signal(signal.SIGSTOP)
            if any(not p.with_name(p.name.replace(".partial", "")).exists() for p in _snapshots(out)):
                proc.send_signal(signal.SIGKILL)
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before a snapshot could be caught"

    resumed = gahb(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "(trained, resumed from its snapshot at step " in resumed.stderr, resumed.stderr
    assert not list(out.rglob("*.partial.pt")) and not list(out.rglob("*.tmp*"))
    b = _scores(out)
    for var in ("psnr", "mse", "psnr_gap", "final_loss"):  # bit-identical training, identical scores
        np.testing.assert_array_equal(b[var].values, whole[var].values, err_msg=var)


def test_snapshot_minutes_must_be_a_number(tmp_path):
    out = gahb(*ARGS, "--out", str(tmp_path), "--snapshot-minutes", "-1")
    assert out.returncode == 2 and "--snapshot-minutes: must be a finite number of minutes" in out.stderr
    assert not list(tmp_path.iterdir())


def test_unknown_experiment_is_refused_before_anything_is_written(tmp_path):
    out = gahb("run", "--arch", "tiny-cnn", "--experiment", "geometri", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "has no experiment(s) 'geometri'; experiments: generalization, geometry, calpha-alpha5" in out.stderr
    assert not list(tmp_path.iterdir())
