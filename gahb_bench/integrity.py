"""A store that cannot lie: every done cell carries a digest of its own values, checked before
the cell is trusted.

When a cell (a model's cell, a baseline's, or a pair task's) is done, :func:`seal` reads its
whole region back from the store and writes the SHA-256 of it, in a canonical byte layout, into
the cell's ``digest`` (``baseline_digest``, ``pair_digest``). :func:`check_experiment` reads
every done cell back and recomputes it. A cell fails the check when

* a chunk of it cannot be decoded (garbage bytes, a truncated file),
* its values differ from its digest (a deleted chunk reads back as the fill value, an edited
  one as something else), or
* it has no digest (its run died between the last write and the seal, or an older gahb-bench
  wrote it).

A cell that fails is never accepted: ``gahb run`` recomputes it (from its checkpoint when the
model's is intact), ``gahb report`` refuses the store and ``gahb check`` names it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gahb_bench.battery import BASELINE_DIMS, CELL_DIMS, PAIR_DIMS, BaselineCell, PairCell

#: Per kind of cell: its status variable, its digest variable, its dimensions, the prefix of its key.
KINDS = {"cell": ("status", "digest", ("arch",) + CELL_DIMS, ()),
         "pair": ("pair_status", "pair_digest", ("arch",) + PAIR_DIMS, ("pair",)),
         "baseline": ("baseline_status", "baseline_digest", BASELINE_DIMS, ("baseline",))}
DIGEST_VARS = tuple(k[1] for k in KINDS.values())
DONE, SKIPPED = 1, 3


@dataclass(frozen=True)
class Damage:
    """A done cell that fails the check: its experiment, its key (as
    :func:`gahb_bench.store.done_cells` gives it), a readable label and the reason."""

    experiment: str
    key: tuple
    label: str
    reason: str


def kind_of(cell) -> str:
    return "baseline" if isinstance(cell, BaselineCell) else "pair" if isinstance(cell, PairCell) else "cell"


def _canonical(values: np.ndarray) -> bytes:
    """Numbers as little-endian float64 (every NaN the same), anything else as JSON text."""
    if values.dtype.kind in "biuf":
        as_float = np.asarray(values, dtype="<f8")
        return np.ascontiguousarray(np.where(np.isnan(as_float), np.nan, as_float)).tobytes()
    return json.dumps([str(v) for v in values.ravel()]).encode()


def _members(ds: xr.Dataset, kind: str) -> list[str]:
    """The variables of one kind of cell: those whose leading dimensions are its dimensions."""
    dims = KINDS[kind][2]
    return sorted(name for name, var in ds.data_vars.items()
                  if var.dims[:len(dims)] == dims and name != KINDS[kind][1])


class _Reader:
    """Reads variables whole when they decode, region by region when they do not, so that one
    damaged chunk costs only its own cell."""

    def __init__(self, ds: xr.Dataset, whole: bool = True):
        self.ds, self.whole = ds, {} if whole else None

    def region(self, name: str, index: dict[str, int]) -> np.ndarray:
        var = self.ds[name]
        position = tuple(index.get(d, slice(None)) for d in var.dims)
        if self.whole is None:  # one cell: read only its chunks
            return np.asarray(var[position].values)
        if name not in self.whole:
            try:
                self.whole[name] = self.ds[name].values
            except Exception:  # noqa: BLE001 - a codec or I/O error: fall back to the cell's own chunk
                self.whole[name] = None
        whole = self.whole[name]
        if whole is not None:
            return np.asarray(whole[position])
        return np.asarray(var[position].values)


def region_digest(reader: _Reader, kind: str, index: dict[str, int]) -> str:
    """SHA-256 of every variable of a cell (by position ``index`` along its dimensions)."""
    h = hashlib.sha256()
    for name in _members(reader.ds, kind):
        values = reader.region(name, index)
        h.update(f"{name}{values.shape}".encode())
        h.update(_canonical(values))
    return h.hexdigest()


def _index(ds: xr.Dataset, kind: str, cell) -> dict[str, int]:
    index = {"arch": 0} if "arch" in KINDS[kind][2] else {}
    for dim, value in cell.index().items():
        index[dim] = int(np.nonzero(ds[dim].values == value)[0][0])
    return index


def seal(path: Path, cell, write) -> None:
    """Write the digest of ``cell``'s region as it now reads back from the store at ``path``
    (``write(values)`` writes into the cell's region, as :func:`gahb_bench.store.write_cell`)."""
    from gahb_bench.store import open_experiment

    kind = kind_of(cell)
    ds = open_experiment(path, cell.experiment)
    write({KINDS[kind][1]: region_digest(_Reader(ds, whole=False), kind, _index(ds, kind, cell))})


def blank(template: xr.Dataset, cell) -> dict[str, np.ndarray]:
    """The pending values of every variable of ``cell``, its digest included: NaN for numbers,
    0 for statuses, −1 for other integers (``n_parameters``), "" for text, as the store's
    template holds them. What a cell is reset to before it is (re)computed, so that nothing of
    an earlier, failed or damaged attempt (a garbage chunk included: a whole-chunk write
    replaces it) survives into the new one. Only shapes and dtypes are read: ``template`` may be
    the store itself, damaged chunks and all."""
    from gahb_bench.store import pending_fill

    kind = kind_of(cell)
    n_cell = len(KINDS[kind][2])
    out = {}
    for name in _members(template, kind) + [KINDS[kind][1]]:
        var = template[name]
        shape = var.shape[n_cell:]
        out[name] = np.full(shape, pending_fill(name, var.dtype),
                            dtype=var.dtype if var.dtype.kind in "fciub" else object)
    return out


def is_pending(path: Path, cell) -> bool:
    """Whether ``cell``'s stored status reads as pending (never attempted, or killed before it
    finished); False when it is anything else or does not decode."""
    from gahb_bench.store import open_experiment

    kind = kind_of(cell)
    try:
        ds = open_experiment(path, cell.experiment)
        return int(_Reader(ds, whole=False).region(KINDS[kind][0], _index(ds, kind, cell))) == 0
    except Exception:  # noqa: BLE001 - unreadable: reset it
        return False


def _status(reader: _Reader, name: str) -> list[tuple[dict[str, int], bool]]:
    """(index, readable) of every done element of a status variable; an element whose chunk does
    not decode is returned as unreadable (its cell is then rerun, whatever it was)."""
    var = reader.ds[name]
    try:
        values = var.values
        return [(dict(zip(var.dims, map(int, idx))), True) for idx in zip(*np.nonzero(values == DONE))]
    except Exception:  # noqa: BLE001 - read element by element
        out = []
        for idx in np.ndindex(var.shape):
            try:
                if int(var[idx].values) == DONE:
                    out.append((dict(zip(var.dims, idx)), True))
            except Exception:  # noqa: BLE001
                out.append((dict(zip(var.dims, idx)), False))
        return out


def _key_and_label(ds: xr.Dataset, kind: str, experiment: str, index: dict[str, int]) -> tuple[tuple, str]:
    dims = [d for d in KINDS[kind][2] if d != "arch"]
    values = [ds[d].values[index[d]] for d in dims]
    values = [v.item() if hasattr(v, "item") else v for v in values]
    label = f"{experiment}/" + " ".join(f"{d}={v}" for d, v in zip(dims, values))
    return KINDS[kind][3] + tuple(values), label


def check_experiment(path: Path, experiment: str) -> tuple[set[tuple], list[Damage]]:
    """(keys of the done cells that pass the check, the :class:`Damage` of those that fail)."""
    from gahb_bench.store import open_experiment

    ds = open_experiment(path, experiment)
    reader = _Reader(ds)
    intact, damaged = set(), []
    for kind, (status, digest_var, _, _) in KINDS.items():
        if status not in ds:
            continue
        for index, readable in _status(reader, status):
            key, label = _key_and_label(ds, kind, experiment, index)
            if not readable:
                damaged.append(Damage(experiment, key, label, f"its {status} does not decode"))
                continue
            reason = _check(reader, kind, digest_var, index)
            if reason:
                damaged.append(Damage(experiment, key, label, reason))
            else:
                intact.add(key)
    return intact, damaged


def _check(reader: _Reader, kind: str, digest_var: str, index: dict[str, int]) -> str:
    if digest_var not in reader.ds:
        return "the store has no digests (written by an older gahb-bench)"
    try:
        written = str(reader.region(digest_var, index).item())
        actual = region_digest(reader, kind, index)
    except Exception as exc:  # noqa: BLE001 - the reason is the finding
        return f"a chunk does not decode ({type(exc).__name__}: {str(exc)[:120]})"
    if written in ("", "nan", "None"):
        return "it has no digest (its run stopped before sealing it)"
    if written != actual:
        return "its values differ from the digest written with them (a chunk is missing or was changed)"
    return _consistent(reader, kind, index)


#: Per kind of cell, the status of each part that a done cell must have finished (done or skipped).
_PARTS = {"cell": "metric_status", "pair": "pair_metric_status"}


def _consistent(reader: _Reader, kind: str, index: dict[str, int]) -> str:
    """A done cell whose own parts say otherwise (a metric pending, no model) was sealed over
    another writer's blank region: not trusted either."""
    if kind in _PARTS and _PARTS[kind] in reader.ds:
        parts = reader.region(_PARTS[kind], index)
        if not np.isin(parts, (DONE, SKIPPED)).all():
            return f"it is marked done but its {_PARTS[kind]} is not (another writer reset it?)"
    if kind == "cell" and "n_parameters" in reader.ds and int(reader.region("n_parameters", index)) <= 0:
        return "it is marked done but has no trained model (another writer reset it?)"
    if kind == "baseline" and "baseline_psnr" in reader.ds and not np.isfinite(reader.region("baseline_psnr", index)).any():
        return "it is marked done but has no scores (another writer reset it?)"
    return ""


def check_store(path: Path) -> dict[str, Any]:
    """Every experiment's check: {experiment: (number of intact done cells, [Damage, …])}."""
    from gahb_bench.store import experiments

    out = {}
    for experiment in experiments(path):
        intact, damaged = check_experiment(path, experiment)
        out[experiment] = (len(intact), damaged)
    return out
