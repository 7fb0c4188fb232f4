"""One writer per store: a live run's lock refuses a second run; a dead run's lock is broken."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from gahb_bench.lock import StoreBusyError, StoreLock, lock_path, read_lock
from helpers import gahb


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write(store, age: float = 0.0, **record):
    """A lock file as another run would have left it, last touched ``age`` seconds ago."""
    path = lock_path(store)
    path.write_text(json.dumps({"started": "then", "token": "x", **record}))
    then = time.time() - age
    os.utime(path, (then, then))


def test_a_live_lock_refuses_a_second_writer_and_is_released(tmp_path):
    store = tmp_path / "s.zarr"
    with StoreLock(store) as first:
        assert read_lock(lock_path(store))["token"] == first.record["token"]
        with pytest.raises(StoreBusyError, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            StoreLock(store).acquire()
    assert not lock_path(store).exists()
    with StoreLock(store) as again:
        assert again.broken is None


def test_the_lock_of_a_dead_process_on_this_host_is_broken(tmp_path):
    store = tmp_path / "s.zarr"
    pid = _dead_pid()
    _write(store, host=socket.gethostname(), pid=pid)
    with StoreLock(store) as lock:
        assert lock.broken["pid"] == pid
        assert read_lock(lock_path(store))["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_another_hosts_lock_is_stale_only_when_its_heartbeat_is_old(tmp_path):
    store = tmp_path / "s.zarr"
    _write(store, host="other-node", pid=1)
    with pytest.raises(StoreBusyError, match="other-node"):
        StoreLock(store).acquire()
    _write(store, age=3600, host="other-node", pid=1)
    with StoreLock(store) as lock:
        assert lock.broken["host"] == "other-node"


def test_a_live_process_on_this_host_is_never_stale_however_old_its_heartbeat(tmp_path):
    store = tmp_path / "s.zarr"
    _write(store, age=3600, host=socket.gethostname(), pid=os.getpid())  # e.g. a job suspended by SIGSTOP
    with pytest.raises(StoreBusyError):
        StoreLock(store).acquire()


def test_an_unreadable_lock_is_broken(tmp_path):
    store = tmp_path / "s.zarr"
    lock_path(store).write_text("{half a rec")
    with StoreLock(store) as lock:
        assert "unreadable" in lock.broken


def test_the_heartbeat_is_renewed_and_a_lost_lock_is_noticed(tmp_path):
    store = tmp_path / "s.zarr"
    with StoreLock(store, heartbeat=0.05) as lock:
        os.utime(lock_path(store), (1, 1))
        deadline = time.time() + 10
        while lock_path(store).stat().st_mtime < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert time.time() - lock_path(store).stat().st_mtime < 5
        assert read_lock(lock_path(store))["token"] == lock.record["token"] and not lock.lost
        _write(store, host="other-node", pid=1)  # another run judged us dead and took the store
        while not lock.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lock.lost
    assert read_lock(lock_path(store))["host"] == "other-node"  # not ours to release


def test_gahb_run_on_a_held_store_exits_3_and_writes_nothing(tmp_path):
    store = tmp_path / "s.zarr"
    _write(store, host=socket.gethostname(), pid=os.getpid())  # this test process: alive
    result = gahb("run", "--arch", "tiny-cnn", "--store", str(store))
    assert result.returncode == 3, result.stderr
    assert "being written by another run" in result.stderr and str(os.getpid()) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not store.exists() and lock_path(store).exists()  # the holder's lock is untouched


def test_sigterm_releases_the_lock_and_exits_143(tmp_path):
    import signal

    from helpers import GAHB

    store = tmp_path / "s.zarr"
    proc = subprocess.Popen([str(GAHB), "run", "--arch", "tiny-cnn", "--store", str(store)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if line.startswith("[1/"):  # running, lock held
            assert lock_path(store).exists()
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, rest
    assert "terminated; rerun" in rest
    assert not lock_path(store).exists()
