"""Mid-training snapshots: a training killed and resumed from its snapshot ends bit-identical to
one never interrupted; SIGINT and SIGTERM save the step in progress before they act; a snapshot
that does not belong to the run is not used."""

import os
import signal
import socket

import numpy as np
import pytest
import torch

from gahb_bench.architectures.unet import UNet
from gahb_bench.contracts import Training
from gahb_bench.errors import ModelError
from gahb_bench.training import Snapshots, StopBetweenSteps, discard_snapshot, train_denoiser

IMAGES = np.random.default_rng(0).uniform(size=(5, 1, 8, 8)).astype(np.float32)
# Batches of 4 from 5 images (permutations straddle batches, so the undealt indices matter) and
# the learning rate halved every 10 steps (the schedule's state matters).
RECIPE = Training(steps=45, batch_size=4, halve_every=10, loss_weighting="inverse-variance")
FIELDS = {"arch": "unet", "n_train": 5}
CPU = torch.device("cpu")


class Interrupt(Exception):
    pass


def _model(init_seed=0, width=4):
    torch.manual_seed(init_seed)
    return UNet(1, blocks=1, width=width)


def _interrupt_after(steps):
    done = []

    def progress(k):
        done.append(k)
        if sum(done) == steps:
            raise Interrupt()
    return progress


def _train(model, snapshots=None, progress=None):
    return train_denoiser(model, IMAGES, RECIPE, 7, CPU, progress, snapshots=snapshots)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def uninterrupted():
    model = _model()
    return model, _train(model)


def test_killed_training_resumes_bit_identical(tmp_path, uninterrupted):
    reference, reference_log = uninterrupted
    snapshots = Snapshots(tmp_path / "key.partial.pt", FIELDS, every_seconds=1e-9)  # after every step
    with pytest.raises(Interrupt):  # raised after step 23, before its snapshot: the last one is of step 22
        _train(_model(), snapshots, _interrupt_after(23))
    assert snapshots.path.exists() and not list(tmp_path.glob("*.tmp*"))

    shown = []
    resumed = _model(init_seed=1)  # another initialization: the snapshot's weights replace it
    log = _train(resumed, snapshots, lambda k, resumed=False: shown.append((k, resumed)))
    assert log.resumed_at == 22 and shown[0] == (22, True) and not any(r for _, r in shown[1:])
    assert sum(k for k, _ in shown) == RECIPE.steps
    assert _same(resumed, reference)
    assert log.final_loss == reference_log.final_loss and log.loss_profile == reference_log.loss_profile
    assert log.loss_change == reference_log.loss_change and reference_log.resumed_at == 0
    assert not resumed.training


def test_a_snapshot_of_another_run_is_not_used(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    path = tmp_path / "key.partial.pt"
    with pytest.raises(Interrupt):
        _train(_model(), Snapshots(path, FIELDS, 1e-9), _interrupt_after(5))
    other = Snapshots(path, {**FIELDS, "n_train": 6}, 1e-9)
    model = _model()
    assert _train(model, other).resumed_at == 0 and _same(model, reference)  # started over

    with pytest.raises(Interrupt):
        _train(_model(), Snapshots(path, FIELDS, 1e-9), _interrupt_after(5))
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "device_type": "cuda"}, path)  # a GPU's generator draws other numbers
    model = _model()
    assert _train(model, Snapshots(path, FIELDS, 1e-9)).resumed_at == 0 and _same(model, reference)

    path.unlink()  # the run above left its own snapshot (after its step 44)
    with pytest.raises(Interrupt):
        _train(_model(), Snapshots(path, FIELDS, 1e-9), _interrupt_after(5))
    torch.save({**torch.load(path, weights_only=True), "format": 0}, path)  # another gahb-bench's layout
    model = _model()
    assert _train(model, Snapshots(path, FIELDS, 1e-9)).resumed_at == 0 and _same(model, reference)

    path.write_bytes(b"not a snapshot")
    model = _model()
    assert _train(model, Snapshots(path, FIELDS, 1e-9)).resumed_at == 0 and _same(model, reference)


def test_a_snapshot_that_does_not_fit_the_model_is_a_clear_error(tmp_path):
    snapshots = Snapshots(tmp_path / "key.partial.pt", FIELDS, 1e-9)
    with pytest.raises(Interrupt):
        _train(_model(width=4), snapshots, _interrupt_after(3))
    with pytest.raises(ModelError, match="does not fit this model.*delete it"):
        _train(_model(width=8), snapshots)


def test_snapshot_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        Snapshots(tmp_path / "x.pt", FIELDS, 0.0)


def test_a_snapshot_that_cannot_be_written_warns_and_training_goes_on(tmp_path, uninterrupted):
    reference, reference_log = uninterrupted
    (tmp_path / "a-file").write_text("")
    snapshots = Snapshots(tmp_path / "a-file" / "key.partial.pt", FIELDS, 1e-9)  # its folder cannot exist
    model = _model()
    with pytest.warns(RuntimeWarning, match="cannot save the training snapshot.*training goes on"):
        log = _train(model, snapshots)
    assert _same(model, reference) and log.final_loss == reference_log.final_loss


def test_discarding_a_snapshot_removes_the_temporary_files_of_killed_saves(tmp_path):
    path = tmp_path / "key.partial.pt"
    path.write_bytes(b"snapshot")
    dead = tmp_path / f"key.partial.tmp-{socket.gethostname()}-{2 ** 22 + 1}"  # above any pid in use here
    alive = tmp_path / f"key.partial.tmp-{socket.gethostname()}-{os.getpid()}"
    other_key = tmp_path / f"other.partial.tmp-{socket.gethostname()}-{2 ** 22 + 1}"
    for temp in (dead, alive, other_key):
        temp.write_bytes(b"half")
    discard_snapshot(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other_key.name])


class Stopped(BaseException):
    """What the CLI's SIGTERM handler raises (``Terminated``)."""


@pytest.fixture
def sigterm_raises_stopped():
    """SIGTERM raises :class:`Stopped`, SIGINT ``KeyboardInterrupt`` (set here: a shell starts a
    background job with SIGINT ignored)."""
    def handler(signum, frame):
        raise Stopped(signum)
    before = signal.signal(signal.SIGTERM, handler), signal.signal(signal.SIGINT, signal.default_int_handler)
    yield handler
    signal.signal(signal.SIGTERM, before[0])
    signal.signal(signal.SIGINT, before[1])


def _signal_at(step, signum, times=1):
    """A progress callback that raises ``signum`` ``times`` times in step ``step``."""
    done = []

    def progress(k, resumed=False):
        done.append(k)
        if sum(done) == step:
            for _ in range(times):
                signal.raise_signal(signum)
    return progress


def _train_held(model, snapshots, progress, after=None):
    """:func:`train_denoiser` in a :class:`StopBetweenSteps` context, as the runner holds it
    (``after()``: the checkpoint's save, inside the context)."""
    with StopBetweenSteps() as stop:
        log = train_denoiser(model, IMAGES, RECIPE, 7, CPU, progress, snapshots=snapshots, stop=stop)
        if after is not None:
            after()
    return log


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, Stopped), (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_mid_training_saves_that_step_then_acts(tmp_path, uninterrupted, sigterm_raises_stopped,
                                                         signum, raised):
    reference, reference_log = uninterrupted
    snapshots = Snapshots(tmp_path / "key.partial.pt", FIELDS, every_seconds=1e9)  # none on the clock
    with pytest.raises(raised):
        _train_held(_model(), snapshots, _signal_at(23, signum))
    assert signal.getsignal(signal.SIGTERM) is sigterm_raises_stopped  # the handlers are put back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = _model(init_seed=1)
    log = _train(resumed, snapshots)
    assert log.resumed_at == 23  # nothing of the 23 finished steps was lost
    assert _same(resumed, reference) and log.final_loss == reference_log.final_loss


def test_a_second_ctrl_c_acts_at_once_a_repeated_sigterm_does_not(tmp_path, sigterm_raises_stopped):
    snapshots = Snapshots(tmp_path / "key.partial.pt", FIELDS, every_seconds=1e9)
    with pytest.raises(KeyboardInterrupt):
        _train_held(_model(), snapshots, _signal_at(23, signal.SIGINT, times=2))
    assert not snapshots.path.exists()  # out before the step's end: no snapshot
    with pytest.raises(Stopped):  # a launcher forwarding the same stop twice
        _train_held(_model(), snapshots, _signal_at(23, signal.SIGTERM, times=2))
    assert _train(_model(), snapshots).resumed_at == 23


def test_a_signal_in_the_last_step_waits_for_the_checkpoint_and_none_is_ever_dropped(tmp_path, sigterm_raises_stopped):
    snapshots = Snapshots(tmp_path / "key.partial.pt", FIELDS, every_seconds=1e9)
    saved = []
    with pytest.raises(Stopped):
        _train_held(_model(), snapshots, _signal_at(RECIPE.steps, signal.SIGTERM), after=lambda: saved.append(1))
    assert saved == [1] and not snapshots.path.exists()  # the model was saved; no snapshot of a finished training

    def fails_after_the_signal(k, resumed=False):
        signal.raise_signal(signal.SIGTERM)  # held
        raise ModelError("diverged")  # and the step fails: the signal must still act
    with pytest.raises(Stopped) as caught:
        _train_held(_model(), snapshots, fails_after_the_signal)
    assert isinstance(caught.value.__context__, ModelError)


def test_without_a_stop_context_a_signal_acts_at_once(sigterm_raises_stopped):
    steps = []

    def progress(k, resumed=False):
        steps.append(k)
        if len(steps) == 5:
            signal.raise_signal(signal.SIGTERM)
            steps.append("after")  # not reached
    with pytest.raises(Stopped):
        _train(_model(), None, progress)
    assert steps == [1] * 5
