"""``gahb verify ENTRY``: recompute one cell of a published entry and compare.

A leaderboard should re-evaluate claims, not take them on faith. From an entry's provenance
(architecture and params, speed-up flags, battery, version and preset; the seeds are the
battery's) the cell is run again from scratch in a scratch folder (trained, then evaluated by
the experiment's metrics) and its mean train and test PSNR over σ are compared with the
published ones, within the battery's ``verify_tolerance_db`` (training is not bit-reproducible
across machines and thread counts), and the entry's parameter count with that of the network
its architecture and params build (compared first: a count that differs is a mismatch
before any training).

What it does not recompute: the headline scores, which are read from every cell of the store
(the store is not published). An entry whose scores were edited and its ``entry_digest``
recomputed passes ``gahb leaderboard check``; only a rerun of the whole battery (``gahb run``
with the entry's provenance, then comparing the scorecards) re-derives them.

A cell is chosen by label, or at random. The installed battery recomputes it, so an entry of
another version is verified only where that version has the installed one's numbers for its
preset (``Battery.numbers_since``).
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gahb_bench import store
from gahb_bench.acceleration import Acceleration
from gahb_bench.errors import LeaderboardError
from gahb_bench.leaderboard.entry import load, validate
from gahb_bench.leaderboard.publish import known_batteries
from gahb_bench.registry import get_registry
from gahb_bench.runner import RunSpec, prepare, run_cell, start


@dataclass
class Verdict:
    label: str
    published: dict[str, float]
    recomputed: dict[str, float]
    tolerance_db: float
    seconds: float
    #: (the entry's parameter count, the count of the network its architecture and params build);
    #: when they differ the cell is not trained (``recomputed`` is empty)
    n_parameters: tuple[int, int] = (0, 0)
    #: Where the recomputing install differs from the entry's (its architecture's plugin or
    #: version): not a mismatch, but a reason one could be.
    notes: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        return (self.n_parameters[0] == self.n_parameters[1] and set(self.recomputed) == set(self.published)
                and all(abs(self.recomputed[k] - v) <= self.tolerance_db for k, v in self.published.items()))


def verify(entry_path: Path, label: str | None = None, seed: int | None = None, device: str = "auto",
           quiet: bool = False) -> Verdict:
    """Recompute the cell ``label`` of the entry at ``entry_path`` (a random one, drawn with
    ``seed``, when None) and return the comparison."""
    entry = load(entry_path)
    known = known_batteries()
    problems = validate(entry, entry_path.name, known)
    if problems:
        raise LeaderboardError(f"{problems[0]} (and {len(problems) - 1} more)" if len(problems) > 1 else str(problems[0]))
    cells = entry["cells"]
    if not cells:
        raise LeaderboardError(f"{entry_path} has no cell scores to verify")
    if label is None:
        label = random.Random(seed).choice(sorted(cells))
    elif label not in cells:
        raise LeaderboardError(f"{entry_path} has no cell {label!r}; cells: {', '.join(sorted(cells))}")
    battery = known[entry["battery"]]
    if not battery.same_numbers(entry["preset"], entry["battery_version"]):
        raise LeaderboardError(f"{entry_path} was made with battery {battery.name} {entry['battery_version']}, whose "
                               f"{entry['preset']} preset differs from the installed {battery.version}'s (other numbers or "
                               f"other stored variables); "
                               f"verify it with a gahb-bench whose battery is {entry['battery_version']}")
    start_time = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gahb-verify-") as scratch:
        spec = RunSpec(entry["arch"], entry["arch_params"], entry["battery"], entry["preset"],
                       str(Path(scratch) / "verify.zarr"), str(Path(scratch) / "checkpoints"), device=device,
                       quiet=quiet, experiments=(label.split("/", 1)[0],),
                       acceleration=Acceleration(**entry["acceleration"]))
        if entry["arch"] not in get_registry().names("architectures"):  # its plugin is not installed here
            raise LeaderboardError(f"the entry's architecture {entry['arch']!r} is not installed: it comes from the "
                                   f"plugin {entry['arch_plugin']!r} of the distribution {entry['arch_distribution']!r}, "
                                   f"version {entry['arch_plugin_version']}; install it to verify the entry")
        plan = prepare(spec)
        cell = next((c for c in plan.cells if getattr(c, "label", None) == label), None)
        if cell is None:
            raise LeaderboardError(f"the installed battery {battery.name} {battery.version} has no cell {label!r}")
        counts = (int(entry["n_parameters"]), int(plan.provenance["n_parameters"]))
        notes = tuple(f"the entry's {key} is {entry[key]!r}, the installed one {plan.identity[key]!r}"
                      for key in ("arch_plugin", "arch_plugin_version") if entry[key] != str(plan.identity[key]))
        if counts[0] != counts[1]:  # another network than the entry claims: a mismatch before any training
            return Verdict(label, cells[label], {}, battery.verify_tolerance_db, time.perf_counter() - start_time,
                           counts, notes)
        start(plan)
        outcome = run_cell(spec, cell, plan.templates[cell.experiment])
        if outcome.status != store.DONE:
            raise LeaderboardError(f"the cell {label} failed when recomputed: {outcome.message}")
        ds = store.load_experiment(Path(spec.store), cell.experiment).isel(arch=0).sel(cell.index())
        recomputed = {f"psnr_{s}": float(ds.psnr.sel(split=s).mean()) for s in ("train", "test")}
    return Verdict(label, cells[label], recomputed, battery.verify_tolerance_db, time.perf_counter() - start_time,
                   counts, notes)
