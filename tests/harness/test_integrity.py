"""A store that cannot lie: a deleted, garbled or unsealed cell is named, never accepted, and
recomputed from its checkpoint to the same numbers."""

import dataclasses
import os
import socket
import time
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import gahb_bench
from gahb_bench import integrity, store
from gahb_bench.cli import main
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from helpers import register_battery


@pytest.fixture()
def tiny(tmp_path):
    exp = gahb_bench.Experiment(
        name="gen", image_classes=("faces",), n_train=(2, 4), subsets=(0, 1),
        metrics=("denoising_curves", "model_variance"), baselines=("image-mean",),
        metric_settings={"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4},
                         "model_variance": {"n_sigma": 3, "n_test": 4}})
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(exp,))
    undo = register_battery(gahb_bench.Battery(name="integrity", version="1", presets={"tiny": preset}))
    spec = RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "integrity", "tiny", str(tmp_path / "s.zarr"),
                   str(tmp_path / "ckpt"), quiet=True)
    first = run(spec)
    assert not first.failed
    yield spec, Path(spec.store), first
    undo()


def _scores(path):
    return xr.open_zarr(path, group="gen").load()


def _chunks(path, var):
    return sorted(p for p in (path / "gen" / var / "c").rglob("*") if p.is_file())


def test_a_finished_store_is_intact_and_every_cell_sealed(tiny, capsys):
    spec, path, first = tiny
    intact, damaged = integrity.check_experiment(path, "gen")
    assert damaged == [] and len(intact) == 4 + 2 + 1  # models, pairs, baseline
    ds = _scores(path)
    assert all(len(str(d)) == 64 for d in ds.digest.values.ravel())
    assert main(["check", str(path)]) == 0
    assert "intact" in capsys.readouterr().out
    assert store.recorded_digest(path) == first.digest == store.scores_digest(path)


@pytest.mark.parametrize("damage, reason", [
    (lambda f: f.unlink(), "differ from the digest"),
    (lambda f: f.write_bytes(b"\x00garbage" * 7), "does not decode"),
])
def test_a_damaged_chunk_is_named_refused_and_recomputed_to_the_same_numbers(tiny, capsys, damage, reason):
    spec, path, first = tiny
    before = _scores(path)
    damage(_chunks(path, "psnr")[0])
    _, damaged = integrity.check_experiment(path, "gen")
    assert len(damaged) == 1 and reason in damaged[0].reason
    assert main(["check", str(path)]) == 1
    assert "damaged: gen/image_class=faces n_train=2 subset=0 seed=0" in capsys.readouterr().out
    assert main(["report", str(path)]) == 2
    assert "fail the integrity check" in capsys.readouterr().err
    again = run(spec)
    assert not again.failed and again.trained == 0 and again.loaded == 1  # from its checkpoint
    after = _scores(path)
    np.testing.assert_array_equal(after.psnr.values, before.psnr.values)
    assert again.digest == first.digest
    assert main(["check", str(path)]) == 0


def test_a_garbled_status_chunk_and_an_unsealed_cell_are_recomputed(tiny):
    spec, path, first = tiny
    _chunks(path, "status")[-1].write_bytes(b"not a chunk")
    template = store.open_experiment(path, "gen")
    cell = gahb_bench.battery.Cell("gen", "faces", 2, 1, 0)
    store.write_cell(path, template, cell, {"digest": ""})  # as if the run died before sealing it
    _, damaged = integrity.check_experiment(path, "gen")
    reasons = sorted(d.reason for d in damaged)
    assert len(damaged) == 2 and "no digest" in reasons[0] + reasons[1] and "status does not decode" in " ".join(reasons)
    again = run(spec)
    assert not again.failed and again.loaded == 2 and again.digest == first.digest


def test_the_scores_digest_is_not_computed_over_missing_data(tiny):
    _, path, _ = tiny
    _chunks(path, "psnr")[0].unlink()
    assert store.finalize(path, {}) == ""
    assert zarr.open_group(str(path), mode="r").attrs["damaged_cells"] == 1


class _Future:
    def __init__(self, key, outcome=None, exc=None):
        self.key, self._outcome, self._exc = key, outcome, exc

    def result(self):
        if self._exc is not None:
            raise self._exc
        return self._outcome


def test_a_task_dask_gave_up_on_is_a_failed_cell_with_its_reason(tiny, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    from gahb_bench.battery import Cell
    from gahb_bench.executors import run_on_dask
    from gahb_bench.runner import CellOutcome

    spec, path, _ = tiny
    lost, fine = Cell("gen", "faces", 2, 0, 0), Cell("gen", "faces", 4, 0, 0)

    class Client:
        def scheduler_info(self):
            return {"workers": {"tcp://a": {"resources": {"GPU": 1}}}}

        def submit(self, fn, spec, cell, *needs, pure, key, resources=None):
            assert resources == {"GPU": 1}  # the workers have GPUs: each model's cell takes one
            if cell == lost:
                return _Future(key, exc=distributed.KilledWorker(key, types.SimpleNamespace(address="tcp://127.0.0.1:1"), 2))
            return _Future(key, outcome=CellOutcome(cell, store.DONE))

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(futures))
    outcomes = []
    run_on_dask(Client(), spec, [lost, fine], outcomes.append)
    assert [o.status for o in outcomes] == [store.FAILED, store.DONE]
    assert "KilledWorker" in outcomes[0].message and "rerun to retry" in outcomes[0].message
    ds = _scores(path).sel(image_class="faces", n_train=2, subset=0, seed=0).isel(arch=0)
    assert int(ds.status) == store.FAILED and "KilledWorker" in str(ds.message.values)


def test_a_store_that_cannot_be_written_stops_the_run_in_one_line_keeping_what_was_done(tmp_path, monkeypatch,
                                                                                         capsys):
    import errno

    real = xr.Dataset.to_zarr
    calls = {"n": 0}

    def full_disk(self, *args, **kwargs):
        if kwargs.get("region") is not None:
            calls["n"] += 1
            if calls["n"] > 8:  # the first baseline and a few writes of the first cells succeed
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", full_disk)
    args = ["run", "--arch", "tiny-cnn", "--experiment", "generalization", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "rerun" in err[0]
    monkeypatch.setattr(xr.Dataset, "to_zarr", real)
    path = tmp_path / "tiny-cnn-standard-smoke.zarr"
    intact, damaged = integrity.check_experiment(path, "generalization")
    # What finished is kept, sealed and trusted; a cell the full disk caught between its status
    # and its seal is not trusted (it is recomputed by the next run).
    assert intact and all("no digest" in d.reason for d in damaged)
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob(".*.zarr.*"))
    assert not list((tmp_path / "checkpoints").rglob("*.tmp*"))


def test_a_stale_checkpoint_temp_file_is_removed(tmp_path):
    import torch

    from gahb_bench.training import STALE_TEMP_SECONDS, TrainingLog, save_checkpoint

    dead, host = subprocess_pid(), socket.gethostname()
    for name in (f"key.tmp{dead}", f"key.tmp-{host}-{dead}", "key.tmp-other-node-1"):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    old = time.time() - 2 * STALE_TEMP_SECONDS
    os.utime(tmp_path / "key.tmp-other-node-1", (old, old))
    # Another node's recent temp file may be a live save there: its pid means nothing here.
    (tmp_path / "key.tmp-other-node-2").write_bytes(b"a save in progress elsewhere")
    log = TrainingLog(steps=1, final_loss=0.0, seconds=0.0, device="cpu")
    save_checkpoint(tmp_path / "key.pt", torch.nn.Linear(1, 1), {}, log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pt", "key.tmp-other-node-2"]


def subprocess_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_store_without_digests_is_read_but_neither_resumed_nor_vouched_for(tiny, capsys):
    spec, path, _ = tiny
    zarr.open_group(str(path), mode="r+").attrs["format"] = "gahb-bench-store/1"
    with pytest.raises(gahb_bench.errors.StoreError, match="older gahb-bench"):
        run(spec)
    assert main(["report", str(path)]) == 0
    assert "not checked" in capsys.readouterr().err
    assert main(["check", str(path)]) == 1


def test_a_done_cell_sealed_over_another_writers_blank_region_is_not_trusted(tiny):
    spec, path, _ = tiny
    template = store.open_experiment(path, "gen")
    cell = gahb_bench.battery.Cell("gen", "faces", 4, 0, 0)
    blank = integrity.blank(template, cell)
    blank["status"] = np.asarray(store.DONE, np.int8)  # a second writer's reset, then the first one's seal
    store.write_cell(path, template, cell, blank)
    integrity.seal(path, cell, lambda d: store.write_cell(path, template, cell, d))
    _, damaged = integrity.check_experiment(path, "gen")
    assert len(damaged) == 1 and "marked done but its metric_status is not" in damaged[0].reason
    again = run(spec)
    assert not again.failed and again.loaded == 1


def test_a_garbage_chunk_of_a_pending_cell_in_an_unselected_experiment_is_read_as_pending(tmp_path, capsys):
    settings = {"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4}}
    chosen, other = (gahb_bench.Experiment(name=name, image_classes=("faces",), n_train=(2,), subsets=(0,),
                                           metrics=("denoising_curves",), metric_settings=settings)
                     for name in ("chosen", "other"))
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                               experiments=(chosen, other))
    undo = register_battery(gahb_bench.Battery(name="pending-garbage", version="1", presets={"tiny": preset}))
    try:
        spec = RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "pending-garbage", "tiny", str(tmp_path / "s.zarr"),
                       str(tmp_path / "ckpt"), quiet=True, experiments=("chosen",))
        first = run(spec)
        path = Path(spec.store)
        chunks = [p for p in (path / "other" / "n_parameters" / "c").rglob("*") if p.is_file()]
        assert chunks  # the pending cell's chunk exists (written when the store was created)
        for chunk in chunks:
            chunk.write_bytes(b"\x00garbage" * 7)
        again = run(spec)  # summaries, figures and the digest read the garbage as pending
        assert again.already_done == 1 and again.digest == first.digest
        assert main(["report", str(path)]) == 0 and main(["check", str(path)]) == 0
        loaded = store.load_experiment(path, "other")
        assert (loaded.n_parameters.values == -1).all() and (loaded.status.values == 0).all()
        rest = run(dataclasses.replace(spec, experiments=()))  # the whole preset, garbage cell included
        assert not rest.failed and rest.finished == 1
        assert (store.load_experiment(path, "other").n_parameters.values > 0).all()
        assert main(["check", str(path)]) == 0
    finally:
        undo()


def test_a_reader_never_turns_a_damaged_done_cell_into_a_pending_one(tiny):
    _, path, _ = tiny
    _chunks(path, "psnr")[0].write_bytes(b"\x00garbage" * 7)
    with pytest.raises(store.StoreError, match="done cells whose psnr do not decode; `gahb check"):
        store.load_experiment(path, "gen")


def test_a_store_whose_coordinates_were_edited_is_not_resumed_and_nothing_is_written(tiny, capsys):
    """No digest covers coordinates, yet scores are read by them: a resumed run compares them with
    the battery's plan and refuses the store as it is (exit 2), writing nothing."""
    from helpers import tree_snapshot

    spec, path, _ = tiny
    sigma = zarr.open_array(str(path / "gen" / "sigma"), mode="r+")
    sigma[:] = sigma[:][::-1]
    before = tree_snapshot(path)
    args = ["run", "--arch", "tiny-cnn", "--param", "depth=3", "--param", "width=4", "--battery", "integrity",
            "--preset", "tiny", "--store", str(path), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "has coordinates its battery does not make (gen: coordinate 'sigma' is" in err
    assert tree_snapshot(path) == before
