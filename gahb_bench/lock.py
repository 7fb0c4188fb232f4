"""One writer per store: a lock file beside it, respected by every ``gahb run``.

The lock is ``STORE.lock`` (a sibling of the store, so that it exists before the store does and
a refusal writes nothing into it). Its record (host, pid, start time, a token unique to the run)
is written to a private file first and then hard-linked to the lock's name: ``link`` fails when
the name exists, atomically on a local file system and on NFS, and no reader ever sees a lock
without its record. The holder's heartbeat is the lock file's modification time, renewed every
``heartbeat`` seconds by a background thread (``utime``: the record itself is never rewritten).

A lock is *stale*, and is broken by the next run, when

* its host is this host and its pid is not a live process (a crashed or killed run: a live pid
  on this host is never stale, however old its heartbeat, e.g. a job suspended by SIGSTOP), or
* its host is another one and its heartbeat is older than ``stale_after`` seconds (a run on
  another node of a shared file system that died with its node).

A stale lock is broken by renaming it aside and checking that what was moved is the record
judged stale (if another run had meanwhile broken it and taken a fresh one, that one is put
back). A run whose lock was broken or taken (it was judged dead) learns it at its next
heartbeat, and ``lost`` becomes true: the run stops at its next cell. Keep ``stale_after`` well
above ``heartbeat``, and the nodes' clocks within the difference.
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
    is stale: a lock's name is only ever linked to a complete record)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        return record if isinstance(record, dict) else {"unreadable": text[:80]}
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}


def is_stale(record: dict, age: float, stale_after: float = STALE_AFTER) -> bool:
    """True when the run that holds ``record``, whose lock file was last touched ``age`` seconds
    ago, is dead (see the module docstring)."""
    if "unreadable" in record:
        return True
    pid = record.get("pid")
    if record.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
        return not pid_alive(pid)
    return age > stale_after


class StoreLock:
    """``with StoreLock(store): ...`` holds the store's lock for the block (see the module
    docstring); raises :class:`StoreBusyError`, naming the holder, when a live run has it."""

    def __init__(self, store: Path, heartbeat: float = HEARTBEAT, stale_after: float = STALE_AFTER):
        self.path = lock_path(Path(store))
        self.heartbeat, self.stale_after = float(heartbeat), float(stale_after)
        self.record = {"host": socket.gethostname(), "pid": os.getpid(), "started": now(),
                       "token": uuid.uuid4().hex}
        self.broken: dict | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _private(self, tag: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{tag}-{self.record['token'][:12]}")

    def _create(self) -> bool:
        """Try to take the lock: True when taken, False when another lock is there."""
        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True)
            mine = self._private("new")
            mine.write_text(json.dumps(self.record))
        except FileExistsError:
            raise StoreError(f"cannot create the store {self.path.with_suffix('')}: {self.path.parent} "
                             "is not a folder") from None
        except OSError as exc:  # a folder that is a file, read-only media: the store cannot be made either
            raise StoreError(f"cannot create the store {self.path.with_suffix('')}: cannot write its lock "
                             f"{self.path}: {exc}") from exc
        try:
            os.link(mine, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            mine.unlink(missing_ok=True)

    def _age(self) -> float | None:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def acquire(self) -> "StoreLock":
        for _ in range(5):
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="gahb-store-lock", daemon=True)
                self._thread.start()
                return self
            holder, age = read_lock(self.path), self._age()
            if holder is None or age is None:
                continue  # released between our calls
            if not is_stale(holder, age, self.stale_after):
                raise StoreBusyError(
                    f"store {self.path.with_suffix('')} is being written by another run (pid {holder.get('pid')} "
                    f"on {holder.get('host')}, started {holder.get('started')}); wait for it to finish, or, if "
                    f"that run is dead, delete {self.path}")
            aside = self._private("stale")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue  # another run broke it first
            moved = read_lock(aside)
            if moved != holder:  # we moved a fresh lock another run had just taken: give it back
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
                aside.unlink(missing_ok=True)
                continue
            aside.unlink(missing_ok=True)
            self.broken = holder
        raise StoreBusyError(f"could not take the lock {self.path}: other runs keep taking it")

    def holds(self) -> bool:
        """Whether the lock file is still this run's."""
        current = read_lock(self.path)
        return bool(current) and current.get("token") == self.record["token"]

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                if not self.holds():
                    self.lost = True  # broken or taken by another run: we were judged dead
                    return
                os.utime(self.path)
            except OSError:  # a transient file-system error: try again at the next beat
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.holds():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
