"""Figures and printed summaries of a results store.

Each metric draws its own figures (its ``plot``); this module finds the metrics of every
experiment in the store and asks them, and prints the headline table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from gahb_bench import figure_files, store
from gahb_bench.battery import PAIR_DIMS
from gahb_bench.convergence import cell_verdicts, cells
from gahb_bench.errors import StoreError
from gahb_bench.registry import get_registry


def figures(path: Path, outdir: Path, formats: tuple[str, ...] = ()) -> list[Path]:
    """Draw every figure the store's metrics know how to draw; returns the PNG paths, each
    also written in ``formats`` beside it (e.g. ``("svg",)``, see
    :mod:`gahb_bench.figure_files`). A metric whose plot fails is reported on stderr and
    skipped: the store (the results) is already written, and the other figures are still drawn."""
    registry = get_registry()
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name in store.experiments(path):
        try:
            ds = store.load_experiment(path, name)
        except StoreError as exc:  # damaged done cells (of an experiment this run did not select)
            print(f"gahb: warning: no figures of experiment {name!r}: {exc}", file=sys.stderr)
            continue
        for metric_name in json.loads(ds.attrs.get("metrics", "[]")):
            if metric_name not in registry.names("metrics"):
                continue
            metric = registry.metric(metric_name)
            if metric.plot is None:
                continue
            try:
                with figure_files.also_as(*formats):
                    paths += metric.plot(ds, outdir)
            except Exception as exc:  # a figure is not worth losing the others (or a run's exit status)
                print(f"gahb: warning: the figures of metric {metric_name!r} (experiment {name!r}) failed: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return paths


def summary_table(path: Path) -> str:
    """Per experiment, class and N: mean output PSNR on train and test, and the gap (dB); then
    the baselines' mean test PSNR."""
    lines = []
    for name in store.experiments(path):
        try:
            ds = store.load_experiment(path, name)
        except StoreError as exc:  # damaged done cells (of an experiment the run did not select)
            lines.append(f"{name}: not shown: {exc}")
            continue
        states = [ds[var] for var in ("status", "pair_status", "baseline_status") if var in ds]
        if not any(bool((s == store.DONE).any()) for s in states):
            failed = sum(int((s == store.FAILED).sum()) for s in states)
            lines.append(f"{name}: no cell done, {failed} failed (rerun to retry them)" if failed else
                         f"{name}: no cell done yet (not run, or run with --experiment naming others)")
            continue
        if "psnr" in ds:
            lines += _model_rows(name, ds.isel(arch=0))
        if "pair_status" in ds:
            lines += _pair_rows(name, ds.isel(arch=0))
        if "baseline_psnr" in ds:
            lines += _baseline_rows(ds)
        summary = json.loads(ds.attrs.get("summary", "{}"))
        done = {scope: var in ds and bool((ds[var] == store.DONE).any())
                for scope, var in (("cell", "status"), ("pair", "pair_status"))}
        for metric, values in summary.items():
            scope = _scope(metric)
            if not values:
                continue
            if not done.get(scope, True):  # an experiment this run did not select: its summary says nothing
                lines.append(f"  summary of {metric}: n/a (none of its {scope}s done)")
                continue
            lines += _wrapped(f"  summary of {metric}: ", [f"{k} = {_summary_value(k, v)}" for k, v in values.items()])
    return "\n".join(lines)


def _scope(metric: str) -> str:
    """``"cell"`` or ``"pair"``: what a metric is measured on (``"cell"`` when its plugin is gone)."""
    registry = get_registry()
    return registry.metric(metric).scope if metric in registry.names("metrics") else "cell"


#: Summary values that are the first N of the grid where something happens: None is "not reached".
_THRESHOLDS = ("n_star", "collapsed_n", "not_denoising_n")


def _summary_value(key: str, value) -> str:
    """A summary value as text; None (NaN when stored) is "not reached" for a threshold N, else
    "n/a" (not computed: no cell done, or too few)."""
    from gahb_bench.scorecard import number

    if value is None:
        return "not reached" if key.split("/")[0] in _THRESHOLDS else "n/a"
    return number(value) if isinstance(value, float) else str(value)


def _wrapped(head: str, items: list[str], width: int = 110) -> list[str]:
    """``head`` then the comma-separated ``items``, continued on indented lines past ``width``."""
    lines, line = [], head
    for j, item in enumerate(items):
        piece = item + ("," if j < len(items) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() != head.strip():
            lines.append(line.rstrip())
            line = "    "
        line += piece + " "
    return lines + [line.rstrip()]


def _pair_rows(name: str, ds) -> list[str]:
    """One row per pair task: its scalar scores (variables with no dimension of their own)."""
    pair_dims = set(PAIR_DIMS)
    scalars = [v for v in ds.data_vars if set(ds[v].dims) == pair_dims and v not in store.BOOKKEEPING]
    width = max([len(v) for v in scalars] + [8]) + 2
    lines = [f"{name}: pairs of models trained on S1 and S2",
             f"  {'image class':<14}{'N':>7}{'seed':>5}" + "".join(f"{v:>{width}}" for v in scalars) + "  status"]
    for cls in ds.image_class.values:
        for n in ds.n_train.values:
            for seed in ds.seed.values:
                cell = ds.sel(image_class=cls, n_train=n, seed=seed)
                values = "".join(f"{float(cell[v]):>{width}.3f}" for v in scalars)
                lines.append(f"  {cls:<14}{n:>7}{seed:>5}{values}  {store.STATUS_NAMES[int(cell.pair_status)]}")
    return lines


def _model_rows(name: str, ds) -> list[str]:
    floor = "psnr_gap_floor" in ds
    lines = [f"{name}: mean output PSNR over sigma in [{ds.sigma.values.min():g}, {ds.sigma.values.max():g}] (dB); "
             f"gap = train - test" + ("; floor = the same for a training-free denoiser; excess = gap - floor"
                                       if floor else ""),
             f"  {'image class':<14}{'N':>7}{'subset':>7}{'seed':>5}{'train':>8}{'test':>8}{'gap':>8}"
             + (f"{'floor':>8}{'excess':>8}" if floor else "") + "  status"]
    flagged = []
    verdicts = dict(cell_verdicts(ds))
    for (cls, n, sub, seed), cell in cells(ds):
        status = store.STATUS_NAMES[int(cell.status)]
        train, test = (float(np.mean(cell.psnr.sel(split=s))) for s in ("train", "test"))
        gap = float(cell.psnr_gap)
        row = f"  {cls:<14}{n:>7}{'S' + str(sub + 1):>7}{seed:>5}{train:>8.2f}{test:>8.2f}{gap:>8.2f}"
        if floor:
            row += f"{float(cell.psnr_gap_floor):>8.2f}{gap - float(cell.psnr_gap_floor):>8.2f}"
        why = verdicts.get((cls, n, sub, seed), "")
        if why:
            status += " *"
            flagged.append(f"  * {cls} N={n} S{sub + 1} seed={seed}: not trained enough: {why}")
        lines.append(row + f"  {status}")
    return lines + flagged


def _baseline_rows(ds) -> list[str]:
    lines = [f"  {'image class':<14}{'baseline':>14}{'seed':>5}{'test':>8}  status"]
    for cls in ds.image_class.values:
        for name in ds.baseline.values:
            for seed in ds.seed.values:
                cell = ds.sel(image_class=cls, baseline=name, seed=seed)
                status = store.STATUS_NAMES[int(cell.baseline_status)]
                lines.append(f"  {cls:<14}{name:>14}{seed:>5}{float(np.mean(cell.baseline_psnr)):>8.2f}  {status}")
    return lines


def write_scorecard(path: Path, outdir: Path, figures: list[Path] = (), experiments: dict | None = None) -> list[Path]:
    """Write the store's scorecard (:mod:`gahb_bench.scorecard`) to ``outdir``: ``scorecard.json``,
    ``scorecard.md`` (the network's scores, then the baselines') and ``scorecard.html``, a
    self-contained page (styles inline, the PNG ``figures`` embedded) with the scorecard, the
    baselines, the provenance and the figures; returns the three paths. ``experiments``: the
    store as :func:`gahb_bench.scorecard.read` returns it, when the caller has read it already."""
    import base64

    from gahb_bench import scorecard
    from gahb_bench.leaderboard.publish import entry_for
    from gahb_bench.leaderboard.site import entry_page

    experiments = experiments if experiments is not None else scorecard.read(path)
    values = scorecard.compute(experiments)
    baselines = scorecard.baseline_scores(experiments)
    outdir.mkdir(parents=True, exist_ok=True)
    identity = store.read_identity(path)
    as_json = outdir / "scorecard.json"
    as_json.write_text(json.dumps({"store": str(path), "identity": identity, "scores": scorecard.to_json(values),
                                   "baselines": {b: scorecard.to_json(v) for b, v in baselines.items()}},
                                  indent=2, sort_keys=True, default=str) + "\n")
    as_md = outdir / "scorecard.md"
    as_md.write_text("\n".join(_scorecard_markdown(identity, values, baselines)) + "\n")
    by_name = {p.name: p for p in figures}

    def embedded(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode(by_name[name].read_bytes()).decode()

    as_html = outdir / "scorecard.html"
    as_html.write_text(entry_page(entry_for(path, experiments, list(by_name)), embedded, standalone=True))
    return [as_json, as_md, as_html]


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _scorecard_markdown(identity: dict, values: dict, baselines: dict) -> list[str]:
    from gahb_bench.scorecard import BY_KEY, shown

    title = (f"{identity.get('arch')} on battery {identity.get('battery')} {identity.get('battery_version')}, "
             f"preset {identity.get('preset')}")
    lines = [f"# Scorecard: {_md(title)}", "",
             "| score | value [95% interval or range: see note] | units | better | from | formula | note |", "|---|---|---|---|---|---|---|"]
    for key, v in values.items():
        s = BY_KEY[key]
        lines.append(f"| {_md(s.title)} | {shown(v.value, v.low, v.high)} | {_md(s.units)} | {s.direction} | {s.experiment} | "
                     f"{_md(s.formula)} | {_md(v.note)} |")
    if baselines:
        keys = sorted({k for v in baselines.values() for k in v})
        lines += ["", "## Baselines (the scores that apply to a training-free denoiser)", "",
                  "| baseline | " + " | ".join(BY_KEY[k].title for k in keys) + " |",
                  "|---|" + "---|" * len(keys)]
        for name, v in baselines.items():
            lines.append(f"| {_md(name)} | " + " | ".join(shown(v[k].value, v[k].low, v[k].high) for k in keys) + " |")
    return lines
