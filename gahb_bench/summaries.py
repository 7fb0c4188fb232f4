"""Experiment-level summaries: numbers computed from all the cells of an experiment.

Some scores are not a property of one cell but of a whole grid: the smallest N at which two
models trained on disjoint subsets agree (N*), a slope fitted across σ, … A metric provides
them through its ``summarize(ds) -> {name: float}`` (see :class:`gahb_bench.Metric`); when a
run finishes, :func:`write` calls every metric of every experiment on the experiment's
Dataset and stores the results in the group's ``summary`` attribute (JSON: metric → name →
value), which the scores digest covers. A metric whose summary raises is recorded with the
error instead of its numbers; NaN means "not reached" or "not enough cells done".
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import zarr

from gahb_bench import store
from gahb_bench.errors import StoreError
from gahb_bench.registry import get_registry


def compute(ds) -> dict[str, dict]:
    """{metric: {name: value}} of an experiment's Dataset (its ``metrics`` attribute names them)."""
    registry = get_registry()
    out: dict[str, dict] = {}
    for name in json.loads(ds.attrs.get("metrics", "[]")):
        if name not in registry.names("metrics"):
            continue
        metric = registry.metric(name)
        if metric.summarize is None:
            continue
        try:
            values = metric.summarize(ds)
            out[name] = {k: (float(v) if v is not None and math.isfinite(float(v)) else None)
                         for k, v in values.items()}
        except Exception as exc:  # a summary is derived data: record why, never lose the run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def write(path: Path) -> dict[str, dict]:
    """Compute every experiment's summary and store it in the group's ``summary`` attribute."""
    written = {}
    for experiment in store.experiments(path):
        try:
            ds = store.load_experiment(path, experiment)
        except StoreError as exc:  # damaged done cells (of an experiment this run did not select)
            print(f"gahb: warning: no summary of experiment {experiment!r}: {exc}", file=sys.stderr)
            continue
        summary = compute(ds)
        zarr.open_group(str(path), mode="r+")[experiment].attrs["summary"] = json.dumps(summary, sort_keys=True)
        written[experiment] = summary
    return written


def read(path: Path, experiment: str) -> dict[str, dict]:
    """The stored summary of one experiment ({} when none was written)."""
    attrs = zarr.open_group(str(path), mode="r", use_consolidated=False)[experiment].attrs
    return json.loads(attrs.get("summary", "{}"))
