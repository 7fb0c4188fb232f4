"""One writer per store: a lock file beside it, respected by every ``gahb run``.

The lock is ``STORE.lock`` (a sibling of the store, so that it exists before the store does and
a refusal writes nothing into it). It is created with ``O_CREAT | O_EXCL``, atomic on a local
file system and on NFS v3 and later, and holds JSON: host, pid, start time, a token unique to
the run, and a heartbeat that a background thread renews every ``heartbeat`` seconds.

A lock is *stale*, and is broken by the next run, when

* its host is this host and its pid is not a live process (a crashed or killed run), or
* its heartbeat is older than ``stale_after`` seconds (a run on another node of a shared file
  system that died with its node: a pid on another host cannot be checked, its heartbeat can).

A stale lock is broken by renaming it aside (one rename wins when several runs try at once) and
taking a fresh one. Keep ``stale_after`` well above ``heartbeat``: a node whose clock runs
behind by more than the difference would see live locks as stale.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from gahb_bench.errors import StoreError
from gahb_bench.provenance import now

#: Seconds between heartbeats, and the age past which a heartbeat means a dead run.
HEARTBEAT = 60.0
STALE_AFTER = 600.0


class StoreBusyError(StoreError):
    """Another live run holds the store's lock."""

    exit_code = 3


def lock_path(store: Path) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".lock")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def read_lock(path: Path) -> dict | None:
    """The lock's record, None when there is none; an unreadable lock is reported as such (it
    is stale: a run writes its record as it creates the file)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        return record if isinstance(record, dict) else {"unreadable": text[:80]}
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}


def is_stale(record: dict, stale_after: float = STALE_AFTER, clock: float | None = None) -> bool:
    """True when the run that holds ``record`` is dead (see the module docstring)."""
    if "unreadable" in record:
        return True
    clock = time.time() if clock is None else clock
    if record.get("host") == socket.gethostname() and not pid_alive(int(record.get("pid", -1))):
        return True
    return clock - float(record.get("heartbeat", 0.0)) > stale_after


class StoreLock:
    """``with StoreLock(store): ...`` holds the store's lock for the block (see the module
    docstring); raises :class:`StoreBusyError`, naming the holder, when a live run has it."""

    def __init__(self, store: Path, heartbeat: float = HEARTBEAT, stale_after: float = STALE_AFTER):
        self.path = lock_path(Path(store))
        self.heartbeat, self.stale_after = float(heartbeat), float(stale_after)
        self.record = {"host": socket.gethostname(), "pid": os.getpid(), "started": now(),
                       "token": uuid.uuid4().hex, "heartbeat": time.time()}
        self.broken: dict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _create(self) -> bool:
        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if self.path.parent.is_dir():
                return False
            raise StoreError(f"cannot create the store {self.path.with_suffix('')}: {self.path.parent} "
                             "is not a folder") from None
        except OSError as exc:  # a folder that is a file, read-only media: the store cannot be made either
            raise StoreError(f"cannot create the store {self.path.with_suffix('')}: cannot write its lock "
                             f"{self.path}: {exc}") from exc
        with os.fdopen(fd, "w") as f:
            json.dump(self.record, f)
        return True

    def acquire(self) -> "StoreLock":
        for _ in range(3):
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="gahb-store-lock", daemon=True)
                self._thread.start()
                return self
            holder = read_lock(self.path)
            if holder is None:
                continue  # released between our two calls
            if not is_stale(holder, self.stale_after):
                raise StoreBusyError(
                    f"store {self.path.with_suffix('')} is being written by another run (pid {holder.get('pid')} "
                    f"on {holder.get('host')}, started {holder.get('started')}); wait for it to finish, or, if "
                    f"that run is dead, delete {self.path}")
            aside = self.path.with_name(f"{self.path.name}.stale-{self.record['token'][:8]}")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue  # another run broke it first
            os.unlink(aside)
            self.broken = holder
        raise StoreBusyError(f"could not take the lock {self.path}: other runs keep taking it")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            current = read_lock(self.path)
            if not current or current.get("token") != self.record["token"]:
                return  # broken by another run (we were taken for dead): nothing to renew
            self.record["heartbeat"] = time.time()
            tmp = self.path.with_name(f"{self.path.name}.tmp-{self.record['token'][:8]}")
            tmp.write_text(json.dumps(self.record))
            os.replace(tmp, self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = read_lock(self.path)
        if current and current.get("token") == self.record["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
