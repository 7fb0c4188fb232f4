"""A whole run: take the store's lock → check → create or resume the store → cells through an
executor → finalize → figures. Rerunning the same command skips the cells already done; a
second run on a store that a live run holds is refused (:mod:`gahb_bench.lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from gahb_bench import report, store, summaries
from gahb_bench.acceleration import Acceleration
from gahb_bench.battery import BaselineCell, Cell, PairCell
from gahb_bench.executors import dask_client, run_in_process, run_on_dask
from gahb_bench.lock import StoreBusyError, StoreLock
from gahb_bench.progress import Progress
from gahb_bench.provenance import now
from gahb_bench.runner import CellOutcome, RunSpec, prepare, start


@dataclass
class RunSummary:
    """What a run did."""

    store: Path
    figures: list[Path] = field(default_factory=list)
    already_done: int = 0
    trained: int = 0
    loaded: int = 0
    baselines: int = 0
    pairs: int = 0
    finished: int = 0
    failed: list[CellOutcome] = field(default_factory=list)
    seconds: float = 0.0
    digest: str = ""


def default_store_name(arch: str, params: dict, defaults: dict, battery: str, preset: str,
                       acceleration: Acceleration = Acceleration()) -> str:
    """``ARCH[-PARAMS][-FLAGS]-BATTERY-PRESET.zarr``: the params that differ from the
    architecture's defaults (``width32``) and the speed-up flags that are on (``bf16``,
    ``channels-last``, ``compile``) are in the name, so runs that differ only by them do not
    meet in one store (which would refuse the second). Characters other than letters, digits,
    ``.`` and ``+`` become ``_``; a name part over 80 characters is replaced by a hash of it."""
    changed = [f"{k}{v}" for k, v in sorted(params.items()) if defaults.get(k) != v]
    flags = [acceleration.precision] if acceleration.precision != "float32" else []
    flags += ["channels-last"] * acceleration.channels_last + ["compile"] * acceleration.compile
    tag = "-".join(re.sub(r"[^A-Za-z0-9.+]", "_", part) for part in changed)
    if len(tag) > 80:
        tag = "params" + hashlib.sha256(tag.encode()).hexdigest()[:12]
    parts = [arch, tag, *flags, battery, preset]
    return "-".join(part for part in parts if part) + ".zarr"


def default_paths(store_path: Path) -> tuple[Path, Path]:
    """(checkpoint folder, figure folder) beside a store: ``checkpoints/`` and ``<stem>-figures/``."""
    return store_path.parent / "checkpoints", store_path.parent / f"{store_path.stem}-figures"


def run(spec: RunSpec, executor: str = "local", address: str | None = None, n_workers: int = 2) -> RunSummary:
    """Run (or resume) ``spec``; bad input raises before anything is written."""
    t0 = time.perf_counter()
    progress = Progress(spec.quiet)
    if executor not in ("local", "dask"):
        raise ValueError(f"unknown executor {executor!r}")
    prepare(spec)  # bad input is refused before anything, the lock included, is written
    with contextlib.ExitStack() as cluster:
        # The cluster before the lock: a missing extra or an unreachable scheduler fails before
        # anything (the lock's folder included) is written.
        client = cluster.enter_context(dask_client(address, n_workers)) if executor == "dask" else None
        with StoreLock(Path(spec.store)) as lock:
            if lock.broken:
                progress.note(f"gahb: broke the stale lock of a dead run (pid {lock.broken.get('pid')} on "
                              f"{lock.broken.get('host')}, started {lock.broken.get('started')})")
            plan = prepare(spec)  # again, under the lock: what is done now
            chosen = set(spec.experiments)
            for damage in plan.damaged:
                then = ("this run recomputes it" if not chosen or damage.experiment in chosen
                        else f"run experiment {damage.experiment!r} to recompute it")
                progress.note(f"gahb: {damage.label} fails the integrity check ({damage.reason}); {then}")
            if plan.installed_version and plan.identity["battery_version"] != plan.installed_version:
                # an earlier version kept by runner._keep_store_version
                progress.note(f"gahb: the store was made by battery {spec.battery} {plan.identity['battery_version']}, "
                              f"whose {spec.preset} numbers are {plan.installed_version}'s: resuming it as "
                              f"{plan.identity['battery_version']}")
            todo = plan.todo
            summary = RunSummary(Path(spec.store), already_done=plan.n_done)
            start(plan)
            progress.note(f"gahb: {len(plan.cells)} cells, {summary.already_done} already done, {len(todo)} to run "
                          f"-> {spec.store}")
            _execute(spec, plan, todo, client, summary, progress, lock)
            summaries.write(Path(spec.store))
            summary.digest = store.finalize(Path(spec.store), {"finished": now(),
                                                               "complete": not summary.failed and
                                                               plan.n_done + summary.finished == len(plan.cells)})
    _, figdir = default_paths(Path(spec.store))
    summary.figures = report.figures(Path(spec.store), figdir)
    summary.seconds = time.perf_counter() - t0
    return summary


def _execute(spec: RunSpec, plan, todo: list, client, summary: RunSummary, progress: Progress,
             lock: StoreLock | None = None) -> None:
    expected = set(todo)

    def on_done(outcome: CellOutcome) -> None:
        if lock is not None and lock.lost:
            raise StoreBusyError(f"another run took the lock of {spec.store} (this run was judged dead: its "
                                 "heartbeat stopped); stopping, the cells finished so far are kept")
        if outcome.cell not in expected:  # never count a cell this run did not ask for
            return
        expected.discard(outcome.cell)
        summary.finished += 1
        if outcome.status == store.DONE and isinstance(outcome.cell, Cell):
            summary.trained += outcome.trained
            summary.loaded += not outcome.trained
        elif outcome.status == store.DONE and isinstance(outcome.cell, PairCell):
            summary.pairs += 1
        elif outcome.status == store.DONE:
            summary.baselines += 1
        else:
            summary.failed.append(outcome)
        what = ("no training" if isinstance(outcome.cell, BaselineCell) else
                "two checkpoints" if isinstance(outcome.cell, PairCell) else
                f"trained, resumed from its snapshot at step {outcome.resumed_at}" if outcome.resumed_at else
                "trained" if outcome.trained else "loaded checkpoint" if outcome.loaded else "no model")
        state = store.STATUS_NAMES[outcome.status]
        tail = f": {outcome.message}" if outcome.message else ""
        progress.note(f"[{summary.finished}/{len(todo)}] {state} {outcome.cell.label} ({what}, {outcome.seconds:.1f} s){tail}")

    if client is None:
        run_in_process(spec, todo, plan.templates, on_done)
    else:
        run_on_dask(client, spec, todo, on_done)
