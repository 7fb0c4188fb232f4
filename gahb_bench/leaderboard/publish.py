"""``gahb publish``: check a store, write its leaderboard entry and figures, rebuild the site.

A store is published only when it can be trusted and compared: written with per-cell digests
(store format 2), every done cell intact, the run complete for its preset, its recorded
``scores_digest`` equal to a recomputation, and its battery version one this install reads.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable

import xarray as xr
import zarr

from gahb_bench import report, scorecard, store
from gahb_bench.contracts import Battery
from gahb_bench.errors import LeaderboardError
from gahb_bench.leaderboard import site
from gahb_bench.leaderboard.entry import SCHEMA, duplicate_key, entry_id, seal, validate
from gahb_bench.registry import get_registry

#: Where a leaderboard keeps its entries and the figures they show.
ENTRIES, FIGURES = "entries", "figures"


def known_batteries() -> dict[str, Battery]:
    """The batteries this install has, by name: what entries are validated against (each reads
    its ``versions``) and grouped by (:meth:`Battery.table_version`)."""
    registry = get_registry()
    return {name: registry.battery(name) for name in registry.names("batteries")}


def check_publishable(path: Path) -> dict:
    """The store's identity when it can be published; :class:`LeaderboardError` saying why not."""
    if not (path / "zarr.json").exists():
        raise LeaderboardError(f"{path} is not a gahb-bench store")
    if not store.is_sealed(path):
        raise LeaderboardError(f"{path} was written by an older gahb-bench without cell digests; rerun it to "
                               "publish it")
    identity = store.read_identity(path)
    known = known_batteries()
    if identity.get("battery") not in known or identity.get("battery_version") not in known[identity["battery"]].versions:
        raise LeaderboardError(f"{path} was run with battery {identity.get('battery')} "
                               f"{identity.get('battery_version')}, which this install does not know")
    _check_complete(path, identity)
    recorded = store.recorded_digest(path)
    if not recorded or recorded != store.scores_digest(path):
        raise LeaderboardError(f"{path}: its scores do not match the scores_digest its run recorded")
    return identity


def _check_complete(path: Path, identity: dict) -> None:
    """Plan the store's run again, from its identity, with the installed battery and plugins:
    the identity must be the one that plan makes (so no attribute was edited) and no cell may be
    left to do (the store's own ``complete`` flag is not taken on its word). Planning checks
    every done cell against its digest (:mod:`gahb_bench.integrity`): the damaged are named."""
    from gahb_bench.errors import GahbError, StoreError
    from gahb_bench.runner import plan_of_store

    try:
        plan = plan_of_store(path, identity)
    except StoreError as exc:  # says what is wrong with the store, naming it
        raise LeaderboardError(str(exc)) from exc
    except GahbError as exc:
        raise LeaderboardError(f"{path} cannot be checked against this install: {exc}") from exc
    if plan.damaged:
        raise LeaderboardError(f"{path} has {len(plan.damaged)} damaged cell(s), e.g. {plan.damaged[0].label}; "
                               "rerun it")
    if plan.todo:
        per = Counter(cell.experiment for cell in plan.todo)
        where = ", ".join(f"{name}: {count}" for name, count in sorted(per.items()))
        raise LeaderboardError(f"{path} is not complete for its preset ({len(plan.todo)} cell(s) failed or "
                               f"pending; {where}; e.g. {plan.todo[0].label}): rerun `gahb run` on it with the "
                               "same architecture and preset and without --experiment (failed cells are retried)")
    # The identity is not covered by the scores digest: the models it describes must be the ones
    # the store's cells trained (an edited architecture or params changes the parameter count).
    # The experiments' sizes are the plan's (``check_identity`` compared them), not an attribute.
    expected = int(plan.provenance["n_parameters"])
    sizes = plan.identity["image_sizes"]
    stored = {int(v) for name in store.experiments(path) if sizes.get(name) == plan.identity["image_size"]
              for v in store.load_experiment(path, name).get("n_parameters", xr.DataArray([])).values.ravel() if v > 0}
    if not stored or stored - {expected}:
        raise LeaderboardError(f"{path}: its identity describes a model of {expected} parameters, its cells "
                               f"trained {sorted(stored) or 'none at the preset size'}: the identity was edited")
    recorded = zarr.open_group(str(path), mode="r").attrs.get("n_parameters")
    if recorded != expected:
        raise LeaderboardError(f"{path}: its n_parameters attribute says {recorded!r}, its architecture and params "
                               f"build {expected}: the store was edited")


def provenance(path: Path) -> dict:
    """What the entry records of how the store was made: the last run's environment and times,
    the seeds, the training recipe and N grids."""
    attrs = zarr.open_group(str(path), mode="r").attrs
    runs = [dict(r) for r in (attrs.get("runs") or [{}])]
    last = runs[-1]
    keep = ("gahb_bench_version", "torch_version", "numpy_version", "python_version", "device", "device_name",
            "cpu", "git_commit")
    # A store resumed elsewhere has several runs: each one's machine and code are recorded.
    each = "; ".join(f"{r.get('started', '?')}: gahb-bench {r.get('gahb_bench_version', '?')} "
                     f"({r.get('git_commit', 'no commit')}) on {r.get('device', '?')} {r.get('device_name', '')}".strip()
                     + (f", CPU {r['cpu']}" if r.get("cpu") else "")
                     for r in runs)
    return {**{k: str(last[k]) for k in keep if last.get(k) is not None}, "runs": each,
            "started": str(attrs.get("started", "")), "finished": str(attrs.get("finished", "")),
            "seeds": str(attrs.get("seeds", "")), "training": str(attrs.get("training", "")),
            "n_train_grids": str(attrs.get("n_train_grids", "")), "image_size": str(attrs.get("image_size", ""))}


def cell_scores(experiments: dict) -> dict[str, dict[str, float]]:
    """{cell label: {"psnr_train": …, "psnr_test": …}}: each done model cell's output PSNR (dB)
    averaged over its σ grid, on its training images and on the test set; what ``gahb verify``
    recomputes."""
    import numpy as np

    out = {}
    for name, (ds, _) in experiments.items():
        if "psnr" not in ds or "split" not in ds.psnr.dims:
            continue
        cells = ds.isel(arch=0)
        for index in zip(*np.nonzero(cells.status.values == store.DONE)):
            where = dict(zip(cells.status.dims, index))
            cell = cells.isel(where)
            label = (f"{name}/{cell.image_class.item()} N={int(cell.n_train)} S{int(cell.subset) + 1} "
                     f"seed={int(cell.seed)}")
            means = {f"psnr_{split}": float(cell.psnr.sel(split=split).mean()) for split in ("train", "test")}
            if all(np.isfinite(v) for v in means.values()):
                out[label] = means
    return out


def entry_for(path: Path, experiments: dict, figures: list[str]) -> dict:
    """The sealed leaderboard entry of the store at ``path`` (``experiments`` as
    :func:`gahb_bench.scorecard.read` returns them; ``figures``: the figures' file names)."""
    identity = store.read_identity(path)
    attrs = zarr.open_group(str(path), mode="r").attrs
    return seal({
        "schema": SCHEMA, "id": entry_id(identity),
        **{k: str(identity.get(k, "")) for k in ("arch", "arch_plugin", "arch_plugin_version", "arch_distribution",
                                                  "battery", "battery_version", "preset")},
        "arch_params": dict(identity.get("arch_params", {})),
        "acceleration": json.loads(identity["acceleration"]) if identity.get("acceleration") else {},
        "n_parameters": int(attrs.get("n_parameters", -1)),
        "inductive_biases": dict(get_registry().architecture(str(identity["arch"])).biases),
        "scores": scorecard.to_json(scorecard.compute(experiments)),
        "baselines": {b: scorecard.to_json(v) for b, v in scorecard.baseline_scores(experiments).items()},
        "provenance": provenance(path), "store_digest": store.recorded_digest(path) or "0" * 64,
        "figures": sorted(figures),
        "cells": cell_scores(experiments),
        "published": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })


def publish(path: Path, leaderboard: Path, replace: bool = False,
            on_removed: Callable[[Path], None] | None = None,
            on_replaced: Callable[[Path], None] | None = None) -> Path:
    """Publish the store at ``path`` to the leaderboard folder ``leaderboard``: its entry
    (``entries/ID.json``), its figures (``figures/ID/``), and the rebuilt site (``site/``).
    Returns the entry's path. An entry making the same claim (architecture, params, flags,
    preset, and the same battery version or one with the same numbers) is replaced only with
    ``replace``, and then removed with its figures (``on_removed`` is told each removed file), or
    overwritten when it has the new entry's id (``on_replaced`` is told its path)."""
    identity = check_publishable(path)
    known = known_batteries()
    experiments = scorecard.read(path)
    with site.locked(leaderboard):  # another publish or build waits: no two writers race for a claim
        return _publish(path, leaderboard, identity, known, experiments, replace, on_removed, on_replaced)


def _publish(path: Path, leaderboard: Path, identity: dict, known: dict[str, Battery], experiments: dict,
             replace: bool, on_removed: Callable[[Path], None] | None,
             on_replaced: Callable[[Path], None] | None) -> Path:
    ident = entry_id(identity)
    target = leaderboard / ENTRIES / f"{ident}.json"
    existing: list[dict] = []
    if (leaderboard / ENTRIES).is_dir():  # nothing is written into a leaderboard that does not check
        existing, problems = site.check(leaderboard, known)
        if problems:
            raise LeaderboardError(f"{leaderboard} has invalid entries, fix them first: {problems[0]}"
                                   + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    claim = duplicate_key(identity, known)
    same = [e["id"] for e in existing if duplicate_key(e, known) == claim]
    if same and not replace:
        raise LeaderboardError(f"{leaderboard / ENTRIES / same[0]}.json makes the same claim (architecture, params, "
                               "flags, preset, and battery numbers); use --replace to publish over it")
    with tempfile.TemporaryDirectory() as scratch:
        drawn = report.figures(path, Path(scratch))
        entry = entry_for(path, experiments, [p.name for p in drawn])
        problems = validate(entry, target.name, known)
        if problems:  # a figure name or a score this install cannot publish
            raise LeaderboardError(f"the entry of {path} would not validate: {problems[0]}")
        figures = leaderboard / FIGURES / ident
        if figures.exists():
            shutil.rmtree(figures)
        figures.mkdir(parents=True)
        for png in drawn:
            shutil.copy2(png, figures / png.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")  # not an entry (``*.json``) until renamed
    tmp.write_text(site.dumps(entry))
    # The replaced entries go before the new one arrives: a crash in between leaves the claim
    # absent until the next publish (the store has it), never two entries making it, which would
    # fail every later check and publish.
    for replaced in sorted(set(same) - {ident}):  # the same claim by an earlier version with the same numbers
        (leaderboard / ENTRIES / f"{replaced}.json").unlink()
        shutil.rmtree(leaderboard / FIGURES / replaced, ignore_errors=True)
        if on_removed is not None:
            on_removed(leaderboard / ENTRIES / f"{replaced}.json")
    tmp.replace(target)
    if ident in same and on_replaced is not None:  # overwritten in place, its figures with it
        on_replaced(target)
    site.build_unlocked(leaderboard, known)
    return target
