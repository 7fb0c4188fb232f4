"""The results store: one Zarr v3 store per run, one xarray Dataset (group) per experiment.

Layout of a group (open it with ``xarray.open_zarr(path, group=EXPERIMENT)``):

* cell dimensions ``arch`` (length 1: the run's architecture), ``image_class``, ``n_train``,
  ``subset``, ``seed``; then each metric's own dimensions (``split``, ``sigma``, …);
* every metric variable, chunked one cell per chunk so concurrent writers never share a chunk;
* ``status`` (0 pending, 1 done, 2 failed), ``message`` and ``digest`` (SHA-256 of the cell's
  values, :mod:`gahb_bench.integrity`) per cell; ``metric_status``
  (0 pending, 1 done, 2 failed, 3 skipped) and ``metric_message`` per cell and metric;
  ``train_seconds``, ``final_loss``, ``n_parameters`` per cell, and the convergence
  diagnostics ``loss_profile`` (over ``training_progress``), ``loss_change``, ``loss_change_se``;
* when the experiment has pair metrics (which compare the models of S1 and S2): their
  variables over (``arch``, ``image_class``, ``n_train``, ``seed``, …), with ``pair_status``,
  ``pair_message``, ``pair_metric_status``, ``pair_metric_message`` and ``pair_digest``;
* when the experiment has baselines: ``baseline_psnr`` and ``baseline_mse`` over
  (``baseline``, ``image_class``, ``seed``, ``sigma``) on the test set, with
  ``baseline_status``, ``baseline_message``, ``baseline_seconds`` and ``baseline_digest``.

The root's attrs hold the run's identity (battery, preset, architecture and its params; a
rerun must match it), its provenance, and at the end a digest of the scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr
import zarr

from gahb_bench.battery import BASELINE_DIMS, CELL_DIMS, PAIR_DIMS, BaselineCell, Cell, PairCell
from gahb_bench.contracts import IMAGE_DIMS
from gahb_bench.convergence import PROFILE_BINS
from gahb_bench.errors import StoreEditedError, StoreError, StoreWriteError

PENDING, DONE, FAILED, SKIPPED = 0, 1, 2, 3
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed", SKIPPED: "skipped"}
#: Format 2 seals every done cell with a digest (:mod:`gahb_bench.integrity`); format 1 stores
#: are still read (``gahb report``) but cannot be checked or resumed.
STORE_FORMAT = "gahb-bench-store/2"
UNSEALED_FORMATS = ("gahb-bench-store/1",)
BOOKKEEPING = ("status", "message", "metric_status", "metric_message", "train_seconds",
               "final_loss", "n_parameters", "loss_profile", "loss_change", "loss_change_se",
               "baseline_status", "baseline_message", "baseline_seconds",
               "pair_status", "pair_message", "pair_metric_status", "pair_metric_message",
               "digest", "pair_digest", "baseline_digest")
#: Status variables are scores too (which cells are done); the other bookkeeping is not.
STATUS_VARS = ("status", "metric_status", "baseline_status", "pair_status", "pair_metric_status")
#: Dimensions along which arrays are chunked one element per chunk (one cell per chunk).
CELL_CHUNKED = {"arch", "baseline"} | set(CELL_DIMS)

# Consolidated metadata works in zarr-python 3 but is not yet in the v3 spec; we rely on it
# knowingly, so its warning is noise for users.
warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)


def experiment_template(arch: str, experiment, metrics: Mapping[str, Any],
                        settings: Mapping[str, Mapping[str, Any]],
                        baselines: Mapping[str, Mapping[str, Any]] | None = None,
                        image_shape: tuple[int, int, int] | None = None) -> xr.Dataset:
    """The empty Dataset of one experiment: every cell pending, every score NaN.

    ``metrics`` maps metric name → :class:`~gahb_bench.contracts.Metric`; ``settings`` maps it to
    its resolved settings; ``baselines`` maps baseline name → its params (their curves use the
    ``sigma`` grid of the metrics); ``image_shape`` (channels, height, width) gives the image
    dimensions ``channel``, ``row``, ``col`` their coordinates. Cell-scope metrics' variables are
    indexed by the cell dims, pair-scope ones by the pair dims (no ``subset``). Raises
    :class:`StoreError` when two metrics disagree on a dimension's coordinates or declare the
    same variable.
    """
    cell_metrics = [name for name, m in metrics.items() if m.scope == "cell"]
    pair_metrics = [name for name, m in metrics.items() if m.scope == "pair"]
    coords: dict[str, Any] = {
        "arch": np.array([arch], dtype=object),
        "image_class": np.array(list(experiment.image_classes), dtype=object),
        "n_train": np.array(sorted(experiment.n_train), dtype=np.int64),
        "subset": np.array(list(experiment.subsets), dtype=np.int64),
        "seed": np.array(list(experiment.seeds), dtype=np.int64),
        "metric": np.array(cell_metrics, dtype=object),
    }
    if image_shape is not None:
        coords.update({dim: np.arange(n, dtype=np.int64) for dim, n in zip(IMAGE_DIMS, image_shape)})
    cell_dims = ("arch",) + CELL_DIMS
    pair_dims = ("arch",) + PAIR_DIMS
    shape = tuple(len(coords[d]) for d in cell_dims)
    pair_shape = tuple(len(coords[d]) for d in pair_dims)
    data_vars: dict[str, Any] = {}
    for name, metric in metrics.items():
        for key, value in metric.coords(settings[name]).items():
            if isinstance(value, tuple):
                value = (value[0], np.asarray(value[1]))
            else:
                value = np.asarray(value, dtype=object if np.asarray(value).dtype.kind in "US" else None)
            if key in coords and not _same(coords[key], value):
                raise StoreError(f"metrics disagree on the coordinates of {key!r} in experiment {experiment.name!r}")
            coords[key] = value
        leading, lead_shape = (cell_dims, shape) if metric.scope == "cell" else (pair_dims, pair_shape)
        for var, spec in metric.variables.items():
            if var in data_vars or var in BOOKKEEPING:
                raise StoreError(f"variable {var!r} of metric {name!r} is declared twice in experiment {experiment.name!r}")
            missing = [d for d in spec.dims if d not in coords]
            if missing:
                raise StoreError(f"variable {var!r} of metric {name!r} has dimension(s) {missing} with no "
                                 f"coordinates (the metric's coords() must give them)")
            extra = tuple(len(_values(coords[d])) for d in spec.dims)
            data_vars[var] = xr.Variable(
                leading + tuple(spec.dims), np.full(lead_shape + extra, np.nan, dtype=spec.dtype),
                attrs={"units": spec.units, "description": spec.description, "metric": name},
            )
    n_metrics = len(cell_metrics)
    data_vars["status"] = xr.Variable(cell_dims, np.zeros(shape, np.int8),
                                      attrs={"description": "0 pending, 1 done, 2 failed"})
    data_vars["message"] = xr.Variable(cell_dims, np.full(shape, "", dtype=object),
                                       attrs={"description": "why a cell failed"})
    data_vars["metric_status"] = xr.Variable(cell_dims + ("metric",), np.zeros(shape + (n_metrics,), np.int8),
                                             attrs={"description": "0 pending, 1 done, 2 failed, 3 skipped"})
    data_vars["metric_message"] = xr.Variable(cell_dims + ("metric",), np.full(shape + (n_metrics,), "", dtype=object),
                                              attrs={"description": "why a metric was skipped or failed"})
    data_vars["digest"] = xr.Variable(cell_dims, np.full(shape, "", dtype=object), attrs={
        "description": "SHA-256 of the cell's values, written when it is done (gahb_bench.integrity)"})
    data_vars["train_seconds"] = xr.Variable(cell_dims, np.full(shape, np.nan), attrs={"units": "s"})
    data_vars["final_loss"] = xr.Variable(cell_dims, np.full(shape, np.nan),
                                          attrs={"description": "training loss (sum over pixels / batch), last 5% of steps"})
    data_vars["n_parameters"] = xr.Variable(cell_dims, np.full(shape, -1, np.int64))
    coords["training_progress"] = (np.arange(PROFILE_BINS) + 1.0) / PROFILE_BINS
    data_vars["loss_profile"] = xr.Variable(
        cell_dims + ("training_progress",), np.full(shape + (PROFILE_BINS,), np.nan),
        attrs={"description": "mean training loss over each tenth of the steps (training_progress: "
                              "fraction of training at the end of the tenth)"})
    data_vars["loss_change"] = xr.Variable(cell_dims, np.full(shape, np.nan), attrs={
        "description": "relative change of the mean training loss over the last tenth of training "
                       "(see gahb_bench.convergence)"})
    data_vars["loss_change_se"] = xr.Variable(cell_dims, np.full(shape, np.nan), attrs={
        "description": "standard error of loss_change"})
    if pair_metrics:
        coords["pair_metric"] = np.array(pair_metrics, dtype=object)
        n_pair = len(pair_metrics)
        data_vars["pair_status"] = xr.Variable(pair_dims, np.zeros(pair_shape, np.int8),
                                               attrs={"description": "0 pending, 1 done, 2 failed"})
        data_vars["pair_message"] = xr.Variable(pair_dims, np.full(pair_shape, "", dtype=object),
                                                attrs={"description": "why a pair task failed"})
        data_vars["pair_metric_status"] = xr.Variable(
            pair_dims + ("pair_metric",), np.zeros(pair_shape + (n_pair,), np.int8),
            attrs={"description": "0 pending, 1 done, 2 failed, 3 skipped"})
        data_vars["pair_metric_message"] = xr.Variable(
            pair_dims + ("pair_metric",), np.full(pair_shape + (n_pair,), "", dtype=object),
            attrs={"description": "why a pair metric was skipped or failed"})
        data_vars["pair_digest"] = xr.Variable(pair_dims, np.full(pair_shape, "", dtype=object),
                                               attrs={"description": "SHA-256 of the pair task's values"})
    if baselines:
        if "sigma" not in coords:
            raise StoreError(f"experiment {experiment.name!r} has baselines but no metric with a sigma grid")
        coords["baseline"] = np.array(list(baselines), dtype=object)
        b_shape = tuple(len(coords[d]) for d in BASELINE_DIMS)
        curve = b_shape + (len(_values(coords["sigma"])),)
        data_vars["baseline_psnr"] = xr.Variable(BASELINE_DIMS + ("sigma",), np.full(curve, np.nan), attrs={
            "units": "dB", "description": "mean output PSNR of the baseline denoiser on the test set"})
        data_vars["baseline_mse"] = xr.Variable(BASELINE_DIMS + ("sigma",), np.full(curve, np.nan), attrs={
            "description": "mean per-pixel squared error of the baseline denoiser on the test set"})
        data_vars["baseline_status"] = xr.Variable(BASELINE_DIMS, np.zeros(b_shape, np.int8),
                                                   attrs={"description": "0 pending, 1 done, 2 failed"})
        data_vars["baseline_message"] = xr.Variable(BASELINE_DIMS, np.full(b_shape, "", dtype=object))
        data_vars["baseline_seconds"] = xr.Variable(BASELINE_DIMS, np.full(b_shape, np.nan), attrs={"units": "s"})
        data_vars["baseline_digest"] = xr.Variable(BASELINE_DIMS, np.full(b_shape, "", dtype=object),
                                                   attrs={"description": "SHA-256 of the baseline cell's values"})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({
        "experiment": experiment.name,
        "metrics": json.dumps(list(metrics)),
        "metric_settings": json.dumps({k: dict(v) for k, v in settings.items()}, default=float),
        "image_class_params": json.dumps({k: dict(v) for k, v in experiment.image_class_params.items()}),
        "baseline_params": json.dumps({k: dict(v) for k, v in (baselines or {}).items()}),
    })
    return ds


def _values(coord: Any) -> np.ndarray:
    return np.asarray(coord[1] if isinstance(coord, tuple) else coord)


def _same(a: Any, b: Any) -> bool:
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a.astype(float), b.astype(float)))
    return bool(np.all(a == b))


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    return {name: {"chunks": tuple(1 if d in CELL_CHUNKED else n for d, n in zip(var.dims, var.shape))}
            for name, var in ds.data_vars.items()}


def create(path: Path, templates: Mapping[str, xr.Dataset], identity: Mapping[str, Any],
           provenance: Mapping[str, Any]) -> None:
    """Write a new store: root attrs, then every experiment group preallocated.

    The store is built under a temporary name beside ``path`` and renamed into place when
    complete, so a run killed while creating it never leaves a half-made store behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A run killed while creating the store left its scratch folder: the store's lock (held
        # by the caller) means no other run is making one now.
        for stale in path.parent.glob(f".{path.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc}") from exc
    try:
        root = zarr.open_group(str(scratch), mode="w", zarr_format=3)
        root.attrs.update({"format": STORE_FORMAT, "identity": json.dumps(dict(identity), sort_keys=True),
                           "runs": [], **dict(provenance)})
        for name, ds in templates.items():
            ds.to_zarr(str(scratch), group=name, mode="w", encoding=_encoding(ds), consolidated=False,
                       zarr_format=3)
        os.replace(scratch, path)
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc}") from exc
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def append_run(path: Path, run: Mapping[str, Any]) -> None:
    """Record one invocation (environment, start time) in the root's ``runs`` list: a resumed
    store says which versions and devices computed which part of it."""
    try:
        root = zarr.open_group(str(path), mode="r+")
        root.attrs["runs"] = list(root.attrs.get("runs", [])) + [dict(run)]
    except OSError as exc:
        raise StoreWriteError(f"cannot write to the store {path}: {type(exc).__name__}: {exc} (read-only media "
                              "or a full disk?); nothing in it was changed") from exc


def read_identity(path: Path) -> dict[str, Any]:
    """The identity recorded in an existing store; :class:`StoreError` if it is not one of ours."""
    try:
        root = zarr.open_group(str(path), mode="r")
        attrs = dict(root.attrs)
    except Exception as exc:
        raise StoreError(f"{path} is not a readable Zarr store ({type(exc).__name__}: {exc})") from exc
    if attrs.get("format") not in (STORE_FORMAT, *UNSEALED_FORMATS) or "identity" not in attrs:
        raise StoreError(f"{path} exists but is not a gahb-bench results store")
    try:
        identity = json.loads(attrs["identity"])
    except (TypeError, ValueError) as exc:
        raise StoreEditedError(f"{path}: its recorded identity is not JSON ({exc}); the store was edited or "
                               "damaged") from exc
    if not isinstance(identity, dict):
        raise StoreEditedError(f"{path}: its recorded identity is not an object; the store was edited or damaged")
    return identity


def is_sealed(path: Path) -> bool:
    """Whether the store's cells carry digests (format 2 on): False for older stores."""
    return zarr.open_group(str(path), mode="r").attrs.get("format") == STORE_FORMAT


def as_recorded(identity: Mapping[str, Any]) -> dict:
    """A run's identity as the store records it: JSON values (a tuple reads back as a list)."""
    return json.loads(json.dumps(dict(identity)))


def check_identity(path: Path, identity: Mapping[str, Any]) -> None:
    """Refuse to resume into a store written by a different run, naming what differs."""
    found = read_identity(path)
    if not is_sealed(path):
        raise StoreError(f"{path} was written by an older gahb-bench (no cell digests) and cannot be resumed; "
                         "use another --store (gahb report still reads it)")
    expected = as_recorded(identity)
    # In the identity's own order (battery, version, preset, size, architecture, …): the first
    # differences named are the ones a user recognizes.
    keys = list(expected) + sorted(set(found) - set(expected))
    diffs = [f"{k}: store has {found.get(k)!r}, this run {expected.get(k)!r}"
             for k in keys if found.get(k) != expected.get(k)]
    if diffs:
        raise StoreError(f"{path} was written by a different run ({'; '.join(diffs[:3])}); "
                         f"use another --store to keep both")


def coordinate_problems(path: Path, experiment: str, template: xr.Dataset) -> list[str]:
    """How the coordinates of ``experiment`` in the store differ from ``template``'s (the
    battery's plan for it): a σ grid, N grid or reference σ edited after the run. No digest
    covers coordinates (they are not scores), yet scores are read by them; so a store is only
    trusted where its coordinates are those its battery makes. Floats compare to 1e-12 relative
    (a grid computed by another NumPy)."""
    ds = open_experiment(path, experiment)
    problems = []
    for name, expected in template.coords.items():
        if name not in ds.coords:
            problems.append(f"{experiment}: coordinate {name!r} is missing")
            continue
        found, wanted = np.asarray(ds.coords[name].values), np.asarray(expected.values)
        if found.shape != wanted.shape:
            same = False
        elif wanted.dtype.kind in "fc" and found.dtype.kind in "fciu":
            same = bool(np.allclose(found, wanted, rtol=1e-12, atol=0.0, equal_nan=True))
        else:
            same = [str(v) for v in found.ravel().tolist()] == [str(v) for v in wanted.ravel().tolist()]
        if not same:
            problems.append(f"{experiment}: coordinate {name!r} is {found.ravel()[:6].tolist()}, the battery's "
                            f"{wanted.ravel()[:6].tolist()}")
    return problems


def open_experiment(path: Path, experiment: str) -> xr.Dataset:
    """One experiment group, lazily; :class:`StoreError` when missing or unreadable."""
    try:
        return xr.open_zarr(str(path), group=experiment, consolidated=False)
    except Exception as exc:
        raise StoreError(f"cannot read experiment {experiment!r} of store {path} "
                         f"({type(exc).__name__}: {exc}); the store may be corrupt") from exc


def pending_fill(name: str, dtype: np.dtype) -> Any:
    """What a pending (never computed, or reset) element of variable ``name`` holds: NaN for
    numbers, 0 (pending) for statuses, −1 for other integers, False for flags, "" for text."""
    kind = np.dtype(dtype).kind
    return (np.nan if kind in "fc" else 0 if name in STATUS_VARS else -1 if kind in "iu"
            else False if kind == "b" else "")


def load_experiment(path: Path, experiment: str) -> xr.Dataset:
    """One experiment group read into memory, for the store's readers (summaries, figures,
    tables, the scores digest). A data chunk that does not decode but holds no done cell (a
    garbage chunk of a pending cell, or of an experiment this run did not select) reads as
    pending (:func:`pending_fill`) instead of stopping the reader. One that holds a done cell,
    or a cell status that does not decode, is a :class:`StoreError`: a done result never turns
    silently into a missing one (``gahb check`` names the damaged cells; a run recomputes them)."""
    ds = open_experiment(path, experiment)
    try:
        return ds.load()
    except Exception:  # noqa: BLE001 - read the variables chunk by chunk below
        pass
    ds = open_experiment(path, experiment)
    try:
        ds = ds.assign_coords({name: ds[name].load() for name in ds.coords})
    except Exception as exc:
        raise StoreError(f"the coordinates of experiment {experiment!r} in {path} are unreadable "
                         f"({type(exc).__name__}: {exc}); the store may be corrupt") from exc
    loaded, lost = {}, {}
    for name in ds.data_vars:
        loaded[name], lost[name] = _load_chunkwise(ds[name])
    damaged = [name for name in _CELL_STATUS if lost.get(name)]
    damaged += [name for name, regions in lost.items()
                if any(_holds_done_cell(loaded, ds[name].dims, region) for region in regions)]
    if damaged:
        raise StoreError(f"experiment {experiment!r} of {path} has done cells whose {', '.join(sorted(set(damaged)))} "
                         f"do not decode; `gahb check {path}` names them and a rerun recomputes them")
    return ds.assign(loaded)


#: The status variables that say which cells are done, each of a kind of cell.
_CELL_STATUS = ("status", "pair_status", "baseline_status")


def _load_chunkwise(var: xr.DataArray) -> tuple[xr.DataArray, list[tuple[slice, ...]]]:
    """(``var`` in memory, the regions of its chunks that did not decode, filled as pending)."""
    try:
        return var.load(), []
    except Exception:  # noqa: BLE001 - one chunk at a time
        pass
    values = np.full(var.shape, pending_fill(var.name, var.dtype), dtype=var.dtype)
    chunks = var.encoding.get("chunks") or var.shape
    lost = []
    for corner in np.ndindex(*[-(-n // c) for n, c in zip(var.shape, chunks)]):
        region = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(corner, chunks, var.shape))
        try:
            values[region] = var[region].values
        except Exception:  # noqa: BLE001 - an undecodable chunk stays pending
            lost.append(region)
    return var.copy(data=values), lost


def _holds_done_cell(loaded: Mapping[str, xr.DataArray], dims: tuple, region: tuple[slice, ...]) -> bool:
    """Whether ``region`` of a variable with ``dims`` covers a cell whose status is done."""
    for name in _CELL_STATUS:
        if name in loaded and tuple(dims[:loaded[name].ndim]) == loaded[name].dims:
            return bool((loaded[name].values[region[:loaded[name].ndim]] == DONE).any())
    return False


def done_cells(path: Path, experiment: str) -> set[tuple]:
    """Keys of the cells already done: (image_class, n_train, subset, seed) for models,
    ("baseline", baseline, image_class, seed) for baselines and ("pair", image_class, n_train,
    seed) for pair tasks."""
    ds = open_experiment(path, experiment)
    done = set()
    for var, dims, prefix in (("status", CELL_DIMS, ()), ("baseline_status", BASELINE_DIMS, ("baseline",)),
                              ("pair_status", PAIR_DIMS, ("pair",))):
        if var not in ds:
            continue
        try:
            status = ds[var].load()
        except Exception as exc:
            raise StoreError(f"the {var} of experiment {experiment!r} in {path} is unreadable "
                             f"({type(exc).__name__}: {exc}); the store may be corrupt") from exc
        if "arch" in status.dims:
            status = status.isel(arch=0)
        for idx in zip(*np.nonzero(status.values == DONE)):
            done.add(prefix + tuple(_python(status[d].values[i]) for d, i in zip(dims, idx)))
    return done


def metric_done(ds: xr.Dataset, metric: str) -> xr.DataArray:
    """Where (over the cells of the first architecture) metric ``metric`` was computed: its
    ``metric_status`` is done. A skipped metric (a class that does not declare what it needs)
    and a failed one are False, so figures and summaries draw nothing from them."""
    return ds["metric_status"].isel(arch=0).sel(metric=metric) == DONE


def largest_n_done(ds: xr.Dataset, metric: str, image_class: str,
                   variables: list[str]) -> tuple[int, xr.Dataset] | None:
    """(N, ``variables`` at that N averaged over subsets and seeds) for the largest N at which
    ``metric`` was computed on ``image_class``; None when it was computed nowhere. What an
    experiment-level summary reports for "the model" (the most-trained-data one)."""
    done = metric_done(ds, metric).sel(image_class=image_class)
    ns = [n for n in ds.n_train.values if bool(done.sel(n_train=n).any())]
    if not ns:
        return None
    cell = ds[variables].isel(arch=0).sel(image_class=image_class, n_train=ns[-1])
    return int(ns[-1]), cell.where(done.sel(n_train=ns[-1])).mean(("subset", "seed"))


def summary_key(ds: xr.Dataset, name: str, image_class: str) -> str:
    """``name``, suffixed ``/image_class`` when the experiment has several classes."""
    return name if ds.sizes["image_class"] == 1 else f"{name}/{image_class}"


def cell_key(cell: Cell | BaselineCell | PairCell) -> tuple:
    """The key :func:`done_cells` uses for ``cell``."""
    prefix = ("baseline",) if isinstance(cell, BaselineCell) else ("pair",) if isinstance(cell, PairCell) else ()
    return prefix + tuple(cell.index().values())


def _python(value: Any) -> Any:
    """A numpy scalar as the plain Python value (strings may already be plain)."""
    return value.item() if hasattr(value, "item") else value


def cell_region(template: xr.Dataset, cell: Cell | BaselineCell | PairCell) -> dict[str, slice]:
    """The region of ``cell`` in its experiment's arrays (cell dims first, in order)."""
    region = {} if isinstance(cell, BaselineCell) else {"arch": slice(0, 1)}
    for dim, value in cell.index().items():
        positions = np.nonzero(template[dim].values == value)[0]
        if len(positions) != 1:
            raise StoreError(f"cell {cell.label} has no place in the store's {dim!r} coordinate")
        region[dim] = slice(int(positions[0]), int(positions[0]) + 1)
    return region


def write_cell(path: Path, template: xr.Dataset, cell: Cell | BaselineCell | PairCell,
               values: Mapping[str, Any]) -> None:
    """Write ``values`` (variable → array without the cell dims) into the cell's region."""
    region = cell_region(template, cell)
    n_cell = len(region)
    data = {}
    for name, value in values.items():
        if name not in template.data_vars:
            raise StoreError(f"cannot write unknown variable {name!r}")
        var = template[name]
        if var.dims[:n_cell] != tuple(region):
            raise StoreError(f"variable {name!r} is not indexed by the dimensions of cell {cell.label}")
        expected = var.shape[n_cell:]
        array = np.asarray(value, dtype=var.dtype)
        if array.shape != expected:
            raise StoreError(f"{name!r} for cell {cell.label} has shape {array.shape}, expected {expected}")
        data[name] = (var.dims, array.reshape((1,) * n_cell + expected))
    try:
        xr.Dataset(data).to_zarr(str(path), group=cell.experiment, region=region, consolidated=False)
    except OSError as exc:
        raise StoreWriteError(f"cannot write cell {cell.label} to the store {path}: {type(exc).__name__}: {exc} "
                              "(read-only media or a full disk?); every cell finished before is kept: rerun "
                              "the same command once the store can be written") from exc


def finalize(path: Path, attrs: Mapping[str, Any]) -> str:
    """Record end-of-run attrs and the scores digest, then consolidate metadata once. The
    digest is computed only over a store whose done cells all pass the integrity check (never
    over missing data); otherwise it is recorded as empty, with the number of damaged cells."""
    from gahb_bench.integrity import check_store

    damaged = sum(len(d) for _, d in check_store(path).values())
    digest = "" if damaged else scores_digest(path)
    attrs = {**attrs, "damaged_cells": damaged}
    root = zarr.open_group(str(path), mode="r+")
    runs = list(root.attrs.get("runs", []))
    if runs:
        runs[-1] = {**runs[-1], "finished": attrs.get("finished")}
    root.attrs.update({**attrs, "runs": runs, "scores_digest": digest})
    zarr.consolidate_metadata(str(path))
    return digest


def recorded_digest(path: Path) -> str:
    """The scores digest the last finished run recorded ("" when none did)."""
    return str(zarr.open_group(str(path), mode="r").attrs.get("scores_digest") or "")


def experiments(path: Path) -> list[str]:
    """Names of the experiment groups in a store."""
    root = zarr.open_group(str(path), mode="r")
    return sorted(name for name, _ in root.groups())


def scores_digest(path: Path) -> str:
    """SHA-256 of every score in the store, in a canonical order and byte layout.

    Covers each experiment's metric variables, the cell, pair and metric status, as
    little-endian float64 (NaN canonicalized), and the experiment summaries, so any change to a
    published number changes the digest; timings and messages are left out.
    """
    h = hashlib.sha256()
    # not the consolidated metadata: a run that rewrites the summaries of a finished store
    # computes its digest before it consolidates again, and must see the summaries it wrote
    root = zarr.open_group(str(path), mode="r", use_consolidated=False)
    for name in experiments(path):
        h.update(f"{name}/summary:{root[name].attrs.get('summary', '{}')}".encode())
        ds = load_experiment(path, name)
        for var in sorted(ds.data_vars):
            if var in BOOKKEEPING and var not in STATUS_VARS:
                continue
            values = np.asarray(ds[var].values, dtype="<f8")
            values = np.where(np.isnan(values), np.nan, values)
            h.update(f"{name}/{var}{values.shape}".encode())
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def quiet_abandoned_reads() -> None:
    """After a deliberate stop (Ctrl-C, SIGTERM, a Dask worker closed mid-cell), say nothing of
    the store reads it abandoned: a stop can land while zarr's I/O loop (a thread) has reads in
    flight, and when that loop closes at exit asyncio logs each pending one ("Task was destroyed
    but it is pending!", "Task exception was never retrieved" with a traceback) and warns of
    coroutines never awaited. Only for a process that is about to end."""
    import logging
    import warnings

    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message="Enable tracemalloc", category=RuntimeWarning)
