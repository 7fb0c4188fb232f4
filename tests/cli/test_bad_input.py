"""Bad input: one clear line, a non-zero exit, and the store left exactly as it was."""

import types

import pytest
import torch

import gahb_bench
from gahb_bench.cli import main
from gahb_bench.registry import register_extra

from helpers import tree_snapshot


def _arch_plugin(name, build, params=None):
    @gahb_bench.hookimpl
    def gahb_register_architectures(register):
        register(gahb_bench.Architecture(name=name, build=build, params=params or {}))

    return types.SimpleNamespace(gahb_register_architectures=gahb_register_architectures)


@pytest.fixture
def existing_store(tmp_path):
    """A store created by a (not yet run) tiny-cnn smoke run, and its bytes."""
    from gahb_bench.runner import RunSpec, prepare, start

    path = tmp_path / "run.zarr"
    start(prepare(RunSpec("tiny-cnn", {"depth": 4, "width": 16}, "standard", "smoke", str(path),
                          str(tmp_path / "ckpt"), quiet=True)))
    return path, tree_snapshot(path)


def _fails(capsys, argv, pattern):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("gahb: error: "), err
    import re

    assert re.search(pattern, err), err
    return err


def test_unknown_architecture_lists_known(capsys, existing_store):
    path, before = existing_store
    _fails(capsys, ["run", "--arch", "resnet", "--store", str(path)], r"unknown architecture 'resnet'; known: .*unet")
    assert tree_snapshot(path) == before


def test_build_that_raises(capsys, existing_store):
    path, before = existing_store

    def build(channels, image_size):
        raise RuntimeError("CUDA kernels not compiled")

    undo = register_extra(_arch_plugin("broken-net", build), name="broken")
    try:
        _fails(capsys, ["run", "--arch", "broken-net", "--store", str(path)],
               r"architecture 'broken-net' \(plugin 'broken'.*failed to build.*CUDA kernels not compiled")
    finally:
        undo()
    assert tree_snapshot(path) == before


class _Conv(torch.nn.Module):
    """One 3×3 convolution with ``padding``; ``output`` makes of its result what the net returns."""

    def __init__(self, padding, output):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=padding, bias=False)
        self.output = output

    def forward(self, y):
        return self.output(self.conv(y))


def _refused_before_anything_is_written(capsys, tmp_path, name, build, pattern):
    undo = register_extra(_arch_plugin(name, build), name=f"{name}-plugin")
    try:
        _fails(capsys, ["run", "--arch", name, "--out", str(tmp_path)], pattern)
    finally:
        undo()
    assert list(tmp_path.iterdir()) == []


def test_wrong_output_shape(capsys, tmp_path):
    _refused_before_anything_is_written(capsys, tmp_path, "shrinks",
                                        lambda c, s: _Conv(0, lambda x: x),  # no padding: loses 2 pixels
                                        r"maps \(2, 1, 8, 8\) to \(2, 1, 6, 6\)")


def test_a_network_no_gradient_reaches_is_refused_before_anything_is_written(capsys, tmp_path):
    _refused_before_anything_is_written(capsys, tmp_path, "detached",
                                        lambda c, s: _Conv(1, torch.Tensor.detach),  # backward() would fail
                                        r"architecture 'detached': its output depends on no trainable parameter")


@pytest.mark.parametrize("param, pattern", [
    ("depth", "expects key=value"),
    ("height=3", r"no parameter 'height'; accepted: depth=4, width=16"),
    ("width=wide", "expects a number"),
])
def test_bad_param(capsys, existing_store, param, pattern):
    path, before = existing_store
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--param", param, "--store", str(path)], pattern)
    assert tree_snapshot(path) == before


@pytest.mark.parametrize("argv, pattern", [
    (["--arch", "unet", "--param", "width=4"], r"different run.*arch: store has 'tiny-cnn', this run 'unet'"),
    (["--arch", "tiny-cnn", "--preset", "cpu"], r"different run.*preset: store has 'smoke', this run 'cpu'"),
    (["--arch", "tiny-cnn", "--param", "width=8"], r"different run.*arch_params"),
])
def test_store_of_a_different_run(capsys, existing_store, argv, pattern):
    path, before = existing_store
    _fails(capsys, ["run", *argv, "--store", str(path)], pattern)
    assert tree_snapshot(path) == before


def test_store_of_a_different_battery(capsys, existing_store):
    from gahb_bench.batteries.standard import SMOKE

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(gahb_bench.Battery(name="other", version="1", presets={"smoke": SMOKE}))

    path, before = existing_store
    undo = register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name="other")
    try:
        _fails(capsys, ["run", "--arch", "tiny-cnn", "--battery", "other", "--store", str(path)],
               r"different run.*battery: store has 'standard', this run 'other'")
    finally:
        undo()
    assert tree_snapshot(path) == before


def test_unknown_preset_and_battery(capsys, tmp_path):
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--preset", "huge", "--out", str(tmp_path)],
           r"no preset 'huge'; presets: smoke, cpu, gpu, paper")
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--battery", "nope", "--out", str(tmp_path)],
           r"unknown battery 'nope'")
    assert list(tmp_path.iterdir()) == []


def test_bad_device_and_unwritable_out(capsys, tmp_path):
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--device", "foo", "--out", str(tmp_path / "a")],
           r"unknown device 'foo'; use auto, cpu, cuda or cuda:N")
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("not a folder")
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--out", str(tmp_path / "file")], r"cannot create the store")
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("argv", [["list", "widgets"], ["run", "--arch", "unet", "--workers", "0"],
                                  ["data", "prepare", "folder", "--src", ".", "--max-memory", "lots"]])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, pattern", [
    (["--scheduler", "tcp://127.0.0.1:8786"], r"options of the dask executor: add --executor dask"),
    (["--workers", "3"], r"options of the dask executor"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "3"], r"a scheduler's cluster"),
])
def test_dask_options_without_the_dask_executor_are_refused(capsys, tmp_path, argv, pattern):
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--out", str(tmp_path / "a"), *argv], pattern)
    assert not (tmp_path / "a").exists()


def test_a_malformed_scheduler_address_is_one_line(capsys, tmp_path):
    pytest.importorskip("dask.distributed")
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--out", str(tmp_path / "a"), "--executor", "dask",
                    "--scheduler", "notanaddress"], r"cannot reach the Dask scheduler notanaddress")
    assert not (tmp_path / "a").exists()  # the cluster is reached before the lock's folder is made


def test_out_and_store_together_are_refused(capsys, tmp_path):
    _fails(capsys, ["run", "--arch", "tiny-cnn", "--out", str(tmp_path / "a"), "--store", str(tmp_path / "b.zarr")],
           r"give --out .* or --store .*, not both")
    assert list(tmp_path.iterdir()) == []


def test_a_reader_that_leaves_early_is_not_an_error():
    import subprocess

    from helpers import GAHB

    proc = subprocess.Popen([str(GAHB), "list", "architectures", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` having read enough, before gahb writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""  # not "gahb: error: [Errno 32] Broken pipe"


def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch, capsys):
    import gahb_bench.cli as cli

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe (a child's, not stdout)")
    monkeypatch.setattr(cli, "_cmd_plugins", broken)
    assert cli.main(["plugins"]) == 2
    assert "Broken pipe (a child's, not stdout)" in capsys.readouterr().err
