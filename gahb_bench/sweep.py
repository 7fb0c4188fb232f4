"""A whole run: check → create or resume the store → cells through an executor → finalize →
figures. Rerunning the same command skips the cells already done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from gahb_bench import report, store
from gahb_bench.battery import BaselineCell, Cell
from gahb_bench.executors import run_in_process, run_on_dask
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
    failed: list[CellOutcome] = field(default_factory=list)
    seconds: float = 0.0
    digest: str = ""


def default_paths(store_path: Path) -> tuple[Path, Path]:
    """(checkpoint folder, figure folder) beside a store: ``checkpoints/`` and ``<stem>-figures/``."""
    return store_path.parent / "checkpoints", store_path.parent / f"{store_path.stem}-figures"


def run(spec: RunSpec, executor: str = "local", address: str | None = None, n_workers: int = 2) -> RunSummary:
    """Run (or resume) ``spec``; bad input raises before anything is written."""
    t0 = time.perf_counter()
    progress = Progress(spec.quiet)
    plan = prepare(spec)
    todo = plan.todo
    summary = RunSummary(Path(spec.store), already_done=len(plan.cells) - len(todo))
    progress.note(f"gahb: {len(plan.cells)} cells, {summary.already_done} already done, {len(todo)} to run "
                  f"-> {spec.store}")
    start(plan)
    finished = 0

    def on_done(outcome: CellOutcome) -> None:
        nonlocal finished
        finished += 1
        if outcome.status == store.DONE and isinstance(outcome.cell, Cell):
            summary.trained += outcome.trained
            summary.loaded += not outcome.trained
        elif outcome.status == store.DONE:
            summary.baselines += 1
        else:
            summary.failed.append(outcome)
        what = "no training" if isinstance(outcome.cell, BaselineCell) else (
            "trained" if outcome.trained else "loaded checkpoint")
        state = store.STATUS_NAMES[outcome.status]
        tail = f": {outcome.message}" if outcome.message else ""
        progress.note(f"[{finished}/{len(todo)}] {state} {outcome.cell.label} ({what}, {outcome.seconds:.1f} s){tail}")

    if executor == "local":
        run_in_process(spec, todo, plan.templates, on_done)
    elif executor == "dask":
        run_on_dask(spec, todo, plan.templates, on_done, address=address, n_workers=n_workers)
    else:
        raise ValueError(f"unknown executor {executor!r}")
    complete = not summary.failed and finished == len(todo)
    summary.digest = store.finalize(Path(spec.store), {"finished": now(), "complete": complete})
    _, figdir = default_paths(Path(spec.store))
    summary.figures = report.figures(Path(spec.store), figdir)
    summary.seconds = time.perf_counter() - t0
    return summary
