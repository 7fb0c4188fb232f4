"""Where cells run. An executor takes the cells to do and calls ``on_done`` with each outcome;
it knows nothing of what a cell does (that is :func:`gahb_bench.runner.run_cell`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import uuid
from typing import Callable, Iterable, Iterator

from gahb_bench.battery import BaselineCell, Cell, PairCell
from gahb_bench.errors import GahbError
from gahb_bench.runner import CellOutcome, RunSpec, lost_cell, run_cell, run_cell_after
from gahb_bench.store import quiet_abandoned_reads


def run_in_process(spec: RunSpec, cells: Iterable[Cell | BaselineCell | PairCell], templates: dict,
                   on_done: Callable[[CellOutcome], None]) -> None:
    """Run cells one after another in this process (the default), in the plan's order, which
    puts every pair task after the two models it compares."""
    for cell in cells:
        on_done(run_cell(spec, cell, templates[cell.experiment]))


def gpu_resource(client) -> str | None:
    """``"GPU"`` when the cluster's workers declare that resource (``dask worker --resources
    GPU=1``, or ``worker_extra_args`` in dask-jobqueue): every cell that runs a network then
    asks for one, so a worker with one GPU runs one such cell at a time. None otherwise."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # noqa: BLE001 - a client that cannot say: no resources asked
        return None
    return "GPU" if any("GPU" in (w.get("resources") or {}) for w in workers.values()) else None


def _ignore_interrupt_plugin():
    from dask.distributed import WorkerPlugin

    class IgnoreInterrupt(WorkerPlugin):
        """Ctrl-C in a terminal reaches the whole process group, the LocalCluster's worker
        processes included; they leave it to the driver, which stops the run and closes the
        cluster (instead of each worker printing its own KeyboardInterrupt traceback). Set on
        the worker's event loop, its main thread; also on workers restarted after a crash.
        When the cluster closes a worker mid-cell, the store reads that cell abandons are not
        logged as the worker's process ends (:func:`gahb_bench.store.quiet_abandoned_reads`)."""

        name = "gahb-ignore-interrupt"

        def setup(self, worker):
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        def teardown(self, worker):
            quiet_abandoned_reads()

    return IgnoreInterrupt()


@contextlib.contextmanager
def dask_client(address: str | None = None, n_workers: int = 2) -> Iterator[object]:
    """A ``distributed.Client``: to the scheduler at ``address``, or to a ``LocalCluster`` of
    ``n_workers`` single-threaded processes. Opened before the store is created, so a missing
    extra or an unreachable scheduler fails before anything is written."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise GahbError("the dask executor needs the dask extra: pip install 'gahb-bench[dask]'") from exc
    if n_workers < 1:
        raise GahbError(f"--workers must be at least 1, got {n_workers}")
    cluster = None
    try:
        if address is None:
            # Warnings of its own shutdown (tasks cancelled, a busy worker killed) are noise after
            # Ctrl-C; failures still reach the user, as failed cells.
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(address or cluster, timeout="20s")
        if cluster is not None:
            client.register_plugin(_ignore_interrupt_plugin())
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an address that does not parse
        if cluster is not None:
            cluster.close()
        raise GahbError(f"cannot reach the Dask scheduler {address or 'LocalCluster'} (expected an address "
                        f"such as tcp://HOST:8786): {type(exc).__name__}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_on_dask(client, spec: RunSpec, cells: Iterable[Cell | BaselineCell | PairCell],
                on_done: Callable[[CellOutcome], None]) -> None:
    """Run cells as tasks on a Dask cluster through ``client`` (see :func:`dask_client`).

    Workers must see the store's path (a shared file system) and have the same plugins
    installed. Each cell writes only its own chunks, so workers never share a chunk. Task keys
    carry a token unique to this run, so two runs on one scheduler never share a task. A pair
    task depends on the tasks of the two models it compares (when this run trains them), so
    the scheduler starts it only once both are finished. A task Dask gives up on (its worker
    died too often: ``KilledWorker``; or a task it depends on did) becomes a failed cell with
    the reason, as any other failure, and the run goes on.
    """
    from dask.distributed import as_completed

    token = uuid.uuid4().hex[:12]
    gpus = gpu_resource(client)
    submitted: dict = {}
    for cell in cells:
        needs = [submitted[m] for m in cell.models() if m in submitted] if isinstance(cell, PairCell) else []
        extra = {"resources": {gpus: 1}} if gpus and not isinstance(cell, BaselineCell) else {}
        submitted[cell] = client.submit(run_cell_after, spec, cell, *needs, pure=False,
                                        key=f"gahb-{token}-{cell.label}", **extra)
    cell_of = {future.key: cell for cell, future in submitted.items()}
    for future in as_completed(list(submitted.values())):
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - Dask gave up on the task (KilledWorker, a lost dependency)
            outcome = lost_cell(spec, cell_of[future.key], exc)
        on_done(outcome)
