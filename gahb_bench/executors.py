"""Where cells run. An executor takes the cells to do and calls ``on_done`` with each outcome;
it knows nothing of what a cell does (that is :func:`gahb_bench.runner.run_cell`).
"""

from __future__ import annotations

from typing import Callable, Iterable

from gahb_bench.battery import Cell
from gahb_bench.runner import CellOutcome, RunSpec, run_cell


def run_in_process(spec: RunSpec, cells: Iterable[Cell], templates: dict,
                   on_done: Callable[[CellOutcome], None]) -> None:
    """Run cells one after another in this process (the default)."""
    for cell in cells:
        on_done(run_cell(spec, cell, templates[cell.experiment]))


def run_on_dask(spec: RunSpec, cells: Iterable[Cell], templates: dict,
                on_done: Callable[[CellOutcome], None], address: str | None = None,
                n_workers: int = 2) -> None:
    """Run cells as tasks on a Dask ``distributed`` cluster.

    ``address`` is a scheduler address (e.g. one started by dask-jobqueue on SLURM); without it a
    ``LocalCluster`` of ``n_workers`` single-threaded processes is started. Workers must see the
    store's path (a shared file system) and have the same plugins installed. Each cell writes
    only its own chunks, so workers never share a chunk.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        from gahb_bench.errors import GahbError

        raise GahbError("the dask executor needs the dask extra: pip install 'gahb-bench[dask]'") from exc
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(address or cluster)
    try:
        futures = [client.submit(run_cell, spec, cell, None, pure=False, key=f"cell-{cell.label}")
                   for cell in cells]
        for future in as_completed(futures):
            on_done(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
