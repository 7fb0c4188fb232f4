"""Pair tasks: a metric that measures the models of S1 and S2 together, registered by a plugin."""

import types

import numpy as np
import pytest
import xarray as xr
import zarr

import gahb_bench
from gahb_bench import store
from gahb_bench.battery import PairCell, cells
from gahb_bench.errors import GahbError
from gahb_bench.registry import register_extra
from gahb_bench.runner import RunSpec, prepare, run_pair_cell, start
from gahb_bench.sweep import run

CALLS = []
FAIL = {"on": False}


def _probe(ctx):
    """Returns what a pair metric can see: the models' disagreement and its two subsets."""
    CALLS.append(ctx)
    s1, s2 = ctx.train_images
    image = ctx.test_set(2)
    disagreement = float(np.abs(ctx.denoise(0, image) - ctx.denoise(1, image)).mean())
    shared = len({x.tobytes() for x in s1} & {x.tobytes() for x in s2})
    if FAIL["on"]:
        raise RuntimeError("probe asked to fail")
    return {"disagreement": disagreement, "shared_images": float(shared),
            "per_subset_size": np.array([len(s1), len(s2)], dtype=float)}


def _summary(ds):
    return {"max_disagreement": float(ds.disagreement.max())}


PROBE = gahb_bench.Metric(
    name="pair-probe", scope="pair", compute=_probe, coords=lambda s: {},
    variables={"disagreement": gahb_bench.Variable((), "", "mean |f1 - f2| on two test images"),
               "shared_images": gahb_bench.Variable(),
               "per_subset_size": gahb_bench.Variable(("subset",))},
    summarize=_summary)


def _battery(subsets=(0, 1)):
    exp = gahb_bench.Experiment(
        name="pairs", image_classes=("faces",), n_train=(2, 4), subsets=subsets, metrics=(
            "denoising_curves", "pair-probe"),
        metric_settings={"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4}})
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(gahb_bench.Battery(name="pairs", version="1", presets={"tiny": preset}))

    @gahb_bench.hookimpl
    def gahb_register_metrics(register):
        register(PROBE)

    return register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries,
                                                gahb_register_metrics=gahb_register_metrics), name="pair-test")


def _spec(tmp_path):
    return RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "pairs", "tiny", str(tmp_path / "s.zarr"),
                   str(tmp_path / "ckpt"), quiet=True)


def test_pairs_are_planned_after_their_models():
    exp = gahb_bench.Experiment(name="e", image_classes=("faces",), n_train=(1, 3), subsets=(0, 1), metrics=())
    preset = gahb_bench.Preset(name="p", image_size=8, training=gahb_bench.Training(steps=1, batch_size=1),
                               experiments=(exp,))
    plan = cells(preset, paired={"e"})
    pairs = [c for c in plan if isinstance(c, PairCell)]
    assert [(p.n_train, p.seed) for p in pairs] == [(1, 0), (3, 0)]
    for pair in pairs:
        assert all(plan.index(model) < plan.index(pair) for model in pair.models())
    assert not any(isinstance(c, PairCell) for c in cells(preset))


def test_a_plugin_pair_metric_runs_stores_and_resumes(tmp_path):
    CALLS.clear()
    undo = _battery()
    try:
        first = run(_spec(tmp_path))
        again = run(_spec(tmp_path))
        planned = len(prepare(_spec(tmp_path)).cells)
    finally:
        undo()
    assert first.pairs == 2 and not first.failed
    ds = xr.open_zarr(tmp_path / "s.zarr", group="pairs").load()
    # Pair variables have no `subset` dimension; each pair saw two disjoint subsets of size N.
    assert ds.disagreement.dims == ("arch", "image_class", "n_train", "seed")
    assert (ds.pair_status == store.DONE).all() and np.isfinite(ds.disagreement.values).all()
    assert (ds.disagreement > 0).all()  # two differently trained models
    assert (ds.shared_images == 0).all()
    np.testing.assert_array_equal(ds.per_subset_size.isel(arch=0, image_class=0, seed=0).values, [[2, 2], [4, 4]])
    assert len(CALLS) == 2
    # The experiment summary is stored and covered by the digest.
    summary = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["pairs"].attrs["summary"]
    assert '"max_disagreement"' in summary
    # A rerun skips everything, pair tasks included.
    assert again.already_done == planned and again.pairs == 0


def test_a_failed_pair_task_is_recorded_and_retried_without_retraining(tmp_path):
    undo = _battery()
    try:
        FAIL["on"] = True
        first = run(_spec(tmp_path))
        ds = xr.open_zarr(tmp_path / "s.zarr", group="pairs").load()
        FAIL["on"] = False
        second = run(_spec(tmp_path))
    finally:
        FAIL["on"] = False
        undo()
    assert len(first.failed) == 2 and all(isinstance(o.cell, PairCell) for o in first.failed)
    assert (ds.pair_status == store.FAILED).all() and (ds.status == store.DONE).all()
    assert all("probe asked to fail" in str(m) for m in ds.pair_message.values.ravel())
    # The rerun retries only the failed pairs, from the models' checkpoints.
    assert second.pairs == 2 and second.trained == 0 and second.loaded == 0 and not second.failed


def test_a_pair_task_never_trains_missing_models(tmp_path):
    undo = _battery()
    try:
        plan = prepare(_spec(tmp_path))
        start(plan)
        pair = next(c for c in plan.cells if isinstance(c, PairCell))
        outcome = run_pair_cell(plan.spec, pair, plan.templates["pairs"])
    finally:
        undo()
    assert outcome.status == store.FAILED and "has no checkpoint" in outcome.message
    assert not (tmp_path / "ckpt").exists()


def test_a_pair_metric_needs_both_subsets(tmp_path):
    undo = _battery(subsets=(0,))
    try:
        with pytest.raises(GahbError, match="needs subsets"):
            prepare(_spec(tmp_path))
    finally:
        undo()
    assert not (tmp_path / "s.zarr").exists()
