"""A tiny published store, shared by the leaderboard tests (one short run per session)."""

import dataclasses
import shutil

import pytest

import gahb_bench
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from helpers import register_battery

SETTINGS = {"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4},
            "model_variance": {"n_sigma": 3, "n_test": 4}}


def _preset():
    exp = gahb_bench.Experiment(name="generalization", image_classes=("faces",), n_train=(2, 4), subsets=(0, 1),
                                metrics=("denoising_curves", "model_variance"), baselines=("image-mean",),
                                metric_settings=SETTINGS)
    return gahb_bench.Preset(name="tiny", image_size=8, training=gahb_bench.Training(steps=4, batch_size=4),
                             experiments=(exp,))


def _register():
    """Register the battery ``board`` (version 2, reading 1) in this process; returns the undo."""
    # "other": a second preset, so that a leaderboard can hold two tables (the browser test).
    other = dataclasses.replace(_preset(), name="other")
    return register_battery(gahb_bench.Battery(name="board", version="2", presets={"tiny": _preset(), "other": other},
                                               readable_versions=("1",)))


@pytest.fixture(autouse=True)
def board_battery(fresh_registry):
    """Every test here sees the ``board`` battery (after the root conftest's fresh registry)."""
    undo = _register()
    yield
    undo()


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory):
    """A complete, sealed store of the ``board`` battery (tiny-cnn), made once per session."""
    from gahb_bench.registry import reset_registry

    root = tmp_path_factory.mktemp("board")
    reset_registry()
    undo = _register()
    try:
        spec = RunSpec("tiny-cnn", {"depth": 3, "width": 4}, "board", "tiny", str(root / "s.zarr"),
                       str(root / "ckpt"), quiet=True)
        assert not run(spec).failed
    finally:
        undo()
    return root / "s.zarr"


@pytest.fixture()
def store_copy(finished_store, tmp_path):
    """A private copy of the finished store (tests may damage it)."""
    target = tmp_path / "s.zarr"
    shutil.copytree(finished_store, target)
    return target


@pytest.fixture()
def board(finished_store, tmp_path):
    """A leaderboard folder with the finished store published: (folder, entry path)."""
    from gahb_bench.leaderboard.publish import publish

    folder = tmp_path / "lb"
    return folder, publish(finished_store, folder)
