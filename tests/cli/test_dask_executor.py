"""The Dask executor runs the same cells to the same numbers as the in-process one, and a worker
killed in the middle of a cell costs time, not results."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from helpers import GAHB, gahb

pytest.importorskip("dask.distributed")

# The generalization experiment: the one with pair tasks, whose models two workers train at once.
ARGS = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--experiment", "generalization", "--quiet"]
STORE = "tiny-cnn-standard-smoke.zarr"


@pytest.fixture(scope="module")
def local_scores(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    # Dask's workers run one thread each (its nanny sets OMP_NUM_THREADS=1); the in-process run
    # gets the same, so float reductions happen in the same order and the numbers can be compared
    # exactly: the smoke preset's training steps amplify a last-bit difference to 0.2 dB otherwise.
    local = gahb(*ARGS, "--out", str(out), env={"OMP_NUM_THREADS": "1"})
    assert local.returncode == 0, local.stderr
    return xr.open_zarr(out / STORE, group="generalization").load()


def _same_scores(a, b):
    assert (b.status == 1).all() and (b.baseline_status == 1).all() and (b.pair_status == 1).all()
    # Baselines do not train: their numbers are identical whatever runs them.
    np.testing.assert_array_equal(b.baseline_psnr.values, a.baseline_psnr.values)
    np.testing.assert_array_equal(b.psnr.values, a.psnr.values)


def test_dask_local_cluster_matches_in_process(tmp_path, local_scores):
    dask = gahb(*ARGS, "--out", str(tmp_path), "--executor", "dask", "--workers", "2")
    assert dask.returncode == 0, dask.stderr
    _same_scores(local_scores, xr.open_zarr(tmp_path / STORE, group="generalization").load())


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the LocalCluster's worker processes, for the driver)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _worker_pids(driver: int) -> list[int]:
    pids = []
    for child in _children(driver):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            pids.append(child)
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_worker_killed_mid_cell_is_replaced_and_the_run_ends_with_the_same_scores(tmp_path, local_scores):
    env = {k: v for k, v in os.environ.items() if k != "GAHB_LOAD_PLUGINS"}
    driver = subprocess.Popen([str(GAHB), *ARGS, "--out", str(tmp_path), "--executor", "dask", "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    checkpoints = tmp_path / "checkpoints"
    killed = None
    deadline = time.monotonic() + 300
    try:
        # Mid-cell: once the first model is trained and saved, the workers are busy with the next
        # cells (and no pair task can finish before both its models have).
        while killed is None and time.monotonic() < deadline and driver.poll() is None:
            workers = _worker_pids(driver.pid)
            if len(workers) == 2 and checkpoints.exists() and any(checkpoints.rglob("*.pt")):
                os.kill(workers[0], signal.SIGKILL)
                killed = workers[0]
            time.sleep(0.05)
        stdout, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, "no worker was seen mid-run"
    assert driver.returncode == 0, stderr
    _same_scores(local_scores, xr.open_zarr(tmp_path / STORE, group="generalization").load())
    assert gahb("check", str(tmp_path / STORE)).returncode == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="waits for the workers through /proc")
def test_ctrl_c_under_dask_stops_in_one_line_and_releases_the_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GAHB_LOAD_PLUGINS"}
    # A terminal's Ctrl-C: SIGINT to the whole process group, the worker processes included. The
    # driver gets SIGINT's default disposition (a test run started in the background of a
    # non-interactive shell inherits SIGINT ignored, and would pass that on).
    driver = subprocess.Popen([str(GAHB), *ARGS, "--out", str(tmp_path), "--executor", "dask", "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    store_path, checkpoints = tmp_path / STORE, tmp_path / "checkpoints"
    deadline = time.monotonic() + 300
    try:
        # Once a first model is saved, both workers are in the middle of cells.
        while time.monotonic() < deadline and driver.poll() is None and not (
                checkpoints.exists() and any(checkpoints.rglob("*.pt"))):
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "gahb: interrupted; rerun the same command to resume"
    assert not (tmp_path / f"{STORE}.lock").exists() and not any(tmp_path.glob("*.lock"))
    check = gahb("check", str(store_path))  # readable; a cell killed between status and seal is named
    assert check.returncode in (0, 1) and "Traceback" not in check.stderr, check.stderr
