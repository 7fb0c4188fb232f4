"""Blind denoiser training (SCIENCE.md §4), its mid-training snapshots and the checkpoint cache.

Recipe of the public code: each image of a batch gets its own noise level, σ = u² with
u ~ U[0, 1] (``sigma_law="u2"``, favouring small σ) or σ ~ U[0, σ_max] (``"uniform"``); the
network never sees σ; loss = Σ_pixels (f(y) − x)² / B; Adam at ``lr`` halved every
``halve_every`` steps.

``loss_weighting="inverse-variance"`` (the CPU presets) multiplies each image's squared error by
w(σ) = 1 / clamp(σ, weight_floor, weight_cap)^p. What it changes: the blind network minimizes
E_σ[w(σ) ‖f(y) − x‖²], whose minimizer is E_w[x | y], the posterior mean under the σ prior
reweighted by w. Where σ can be read off y (large images: ‖y − x‖²/D concentrates at σ²) that is
E[x | y] at every σ, the same function as without weighting; on small patches at low σ, where
texture and noise are harder to tell apart, the two can differ slightly. What it does not do:
reproduce the paper's eq. 5 weighting exactly (σ⁻³ dσ, i.e. σ⁻² per log σ); with σ = u² draws
(density ∝ σ^½ per log σ) and p = 2 the effective weight is σ^(−3/2) per log σ. It is a budget
device, named and recorded in every checkpoint key and store; ``paper`` does not use it. Every N gets the same number of gradient steps: batches are dealt from
a stream of independent permutations of the subset (the subset is tiled).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import socket
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gahb_bench.acceleration import Acceleration
from gahb_bench.contracts import Training
from gahb_bench.convergence import loss_change, loss_profile
from gahb_bench.errors import ModelError
from gahb_bench.lock import pid_alive


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available here")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ModelError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA devices exist")
    return chosen


def draw_sigmas(batch: int, training: Training, generator: torch.Generator) -> torch.Tensor:
    """Per-image noise levels for one batch, following ``training.sigma_law``, drawn on the
    generator's device."""
    u = torch.rand(batch, generator=generator, device=generator.device)
    if training.sigma_law == "u2":
        return training.sigma_max * u**2
    return training.sigma_max * u


class BatchStream:
    """Index batches dealt from consecutive random permutations of range(n), drawn on the
    generator's device. Its state is the generator's and :attr:`pending`, the indices of the
    permutations drawn so far that were not dealt yet (what a snapshot keeps)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.pending = torch.empty(0, dtype=torch.long, device=generator.device)

    def next(self) -> torch.Tensor:
        """The next ``batch_size`` indices."""
        while len(self.pending) < self.batch_size:
            repeats = max(1, math.ceil((self.batch_size - len(self.pending)) / self.n))
            fresh = torch.cat([torch.randperm(self.n, generator=self.generator, device=self.generator.device)
                               for _ in range(repeats)])
            self.pending = torch.cat([self.pending, fresh])
        batch, self.pending = self.pending[:self.batch_size], self.pending[self.batch_size:]
        return batch


def batch_indices(n: int, steps: int, batch_size: int, generator: torch.Generator):
    """Yield ``steps`` batches of a :class:`BatchStream`."""
    stream = BatchStream(n, batch_size, generator)
    for _ in range(steps):
        yield stream.next()


@dataclass
class TrainingLog:
    """What training did: steps, final loss (mean of the last 5% of steps), wall time, and the
    convergence diagnostics of :mod:`gahb_bench.convergence` (the mean loss per tenth of
    training, the relative change over the last tenth and its standard error)."""

    steps: int
    final_loss: float
    seconds: float
    device: str
    loss_profile: list = field(default_factory=list)
    loss_change: float = math.nan
    loss_change_se: float = math.nan
    #: The step at which this training resumed from a snapshot (0: it ran from the start).
    resumed_at: int = 0


@dataclass(frozen=True)
class Snapshots:
    """Mid-training snapshots of one training, so that a killed run resumes where it was.

    Every ``every_seconds`` of training (checked after each step), the whole training state is
    written atomically to ``path``: the model's parameters and buffers, Adam's moments, the
    learning-rate schedule, the random generator's state, the batch stream's undealt indices, the
    losses so far and the time spent. Training resumed from it continues bit-identically on the
    same device type: the same batches, σ, noise and updates as a run never interrupted (a
    snapshot is taken between two steps, and nothing else carries state from one step to the
    next). A snapshot whose ``fields`` differ from the run's, made on another device type (whose
    generator draws other numbers), of another layout (:data:`SNAPSHOT_FORMAT`) or unreadable is
    ignored: training starts over. SIGINT and SIGTERM lose nothing (a snapshot of the step in
    progress is saved before they act: :class:`StopBetweenSteps`); SIGKILL, a crash or a power
    cut lose at most ``every_seconds`` of training. The runner removes the snapshot once the
    trained model is saved."""

    path: Path
    #: What determines the trained model (:func:`checkpoint_fields`), kept inside the snapshot.
    fields: dict
    every_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not self.every_seconds > 0:
            raise ValueError(f"every_seconds must be positive, got {self.every_seconds}")


#: The layout of a snapshot's contents; a snapshot of another layout is ignored.
SNAPSHOT_FORMAT = 1


class _TrainingState:
    """Everything that a training step changes and the next one reads: what a snapshot holds."""

    def __init__(self, model, optimizer, scheduler, generator: torch.Generator, stream: BatchStream,
                 losses: torch.Tensor):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generator, self.stream, self.losses = generator, stream, losses
        self.resumed_at, self.seconds_before, self.started = 0, 0.0, time.perf_counter()

    def seconds(self) -> float:
        """Training time so far, the runs before a resume included."""
        return self.seconds_before + time.perf_counter() - self.started

    def snapshot(self, step: int, device: torch.device) -> dict:
        """The state after ``step`` steps, with views copied (a view would save its whole buffer)."""
        return {"format": SNAPSHOT_FORMAT, "step": step, "device_type": device.type, "seconds": self.seconds(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "generator": self.generator.get_state(), "pending": self.stream.pending.clone().cpu(),
                "losses": self.losses[:step].clone().cpu()}

    def restore(self, blob: dict | None) -> None:
        """Continue from ``blob`` (a :meth:`snapshot`; None: from the start)."""
        if blob is None:
            return
        device = self.losses.device
        try:
            step, seconds = int(blob["step"]), float(blob["seconds"])
            self.model.load_state_dict(blob["model"])
            self.optimizer.load_state_dict(blob["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(blob["scheduler"])
            self.generator.set_state(blob["generator"])
            self.stream.pending = blob["pending"].to(device)
            self.losses[:step] = blob["losses"].to(device)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"the training snapshot {blob.get('path', '')} does not fit this model "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); delete it to train from "
                             "the start") from exc
        self.resumed_at, self.seconds_before = step, seconds


class StopBetweenSteps:
    """A context in which SIGINT (Ctrl-C) and SIGTERM (a job scheduler's stop, ``kill``) are
    held back until a safe moment, then delivered again to the handler that was there before
    (which raises ``KeyboardInterrupt``, or the CLI's ``Terminated``).

    :func:`train_denoiser` given it checks it after every step: at a step's end the training
    state is whole (in the middle of a step the weights may be updated and the schedule not
    yet), so it saves a snapshot there and delivers the signal; nothing of the training is
    lost. The runner holds it across the training *and* the save of the trained model, so a
    signal in between is delivered once the checkpoint is written, and on leaving the context
    whatever happened (an exception of the training included) a held signal is delivered: it
    is never dropped. A second SIGINT acts at once (a user pressing Ctrl-C twice wants out
    now); repeated SIGTERMs do not (schedulers and launchers forward the same stop more than
    once). A signal that was ignored (``SIG_IGN``, e.g. SIGINT in a Dask worker) stays ignored;
    a handler installed outside Python (``getsignal`` is None) is put back as ``SIG_DFL``; in
    threads other than the main one, where Python runs no signal handler, nothing changes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopBetweenSteps":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self.previous[signum] = signal.signal(signum, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            self.deliver()
        self.received = self.received or signum

    def _restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self.previous = {}

    def deliver(self) -> None:
        """Put the earlier handlers back and raise the held signal again (nothing if none)."""
        self._restore()
        signum, self.received = self.received, None
        if signum is not None:
            signal.raise_signal(signum)

    def __exit__(self, exc_type, exc, tb) -> None:
        self.deliver()


#: Steps between two checks that the loss is finite: the only moments training waits for the
#: device (a check per step would stall a GPU's queue at every step).
CHECK_EVERY = 100


def train_denoiser(
    model: torch.nn.Module,
    images: np.ndarray,
    training: Training,
    seed: int,
    device: torch.device,
    progress: Callable[..., None] | None = None,
    acceleration: Acceleration = Acceleration(),
    snapshots: Snapshots | None = None,
    stop: StopBetweenSteps | None = None,
) -> TrainingLog:
    """Train ``model`` in place on ``images`` (N, C, H, W) with the blind recipe.

    Everything stays on ``device``: the training set is copied there once, and each step's batch
    indices, σ and noise are drawn there, from one stream seeded by ``seed`` (on a GPU, the
    device's generator: a GPU run draws other noise than a CPU run of the same seed); the loss
    is read back every :data:`CHECK_EVERY` steps only, so no step waits for the host.
    ``acceleration`` applies the optional speed-ups of :mod:`gahb_bench.acceleration` (none by
    default: strict float32). With ``snapshots``, training resumes from the snapshot left by a
    killed run (if one matches) and saves its state as it goes (:class:`Snapshots`). Within a
    ``stop`` context (:class:`StopBetweenSteps`), a SIGINT or SIGTERM stops the training at the
    end of the step in progress, after a snapshot of it when there are ``snapshots``.
    ``progress(k)`` is called after every k steps (for a progress bar; a resumed training first
    calls ``progress(k, resumed=True)`` with the steps its snapshot holds). Raises
    :class:`ModelError` when the loss becomes non-finite.
    """
    generator = torch.Generator(device=device).manual_seed(int(seed))
    data = torch.as_tensor(images, dtype=torch.float32).to(device)
    model.to(device).train()
    forward = acceleration.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr)
    scheduler = None
    if training.halve_every:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=training.halve_every, gamma=0.5)
    state = _TrainingState(model, optimizer, scheduler, generator, BatchStream(len(data), training.batch_size, generator),
                           torch.empty(training.steps, device=device))
    if snapshots is not None:
        state.restore(load_snapshot(snapshots, device))
        if progress is not None and state.resumed_at:
            progress(state.resumed_at, resumed=True)
    with acceleration.float_mode(training=True):
        _steps(forward, data, training, state, progress, snapshots, stop)
    model.eval()
    values = state.losses.cpu().numpy().astype(np.float64)
    change, change_se = loss_change(values)
    tail = max(1, training.steps // 20)
    return TrainingLog(training.steps, float(np.mean(values[-tail:])), state.seconds(), str(device),
                       loss_profile(values).tolist(), change, change_se, state.resumed_at)


def _steps(forward, data, training: Training, state: _TrainingState, progress, snapshots: Snapshots | None,
           stop: StopBetweenSteps | None = None) -> None:
    """The training loop of :func:`train_denoiser`, from ``state.resumed_at`` (losses written into
    ``state.losses``; a snapshot saved whenever one is due, and when ``stop`` has received a
    signal, after which the signal is delivered)."""
    device, checked, losses = data.device, state.resumed_at, state.losses
    last_saved = time.monotonic()
    for step in range(state.resumed_at, training.steps):
        idx = state.stream.next()
        x = data[idx]
        sigma = draw_sigmas(len(idx), training, state.generator).view(-1, 1, 1, 1)
        noise = torch.randn(x.shape, generator=state.generator, device=device) * sigma
        state.optimizer.zero_grad(set_to_none=True)
        errors = ((forward(x + noise) - x) ** 2).flatten(1).sum(dim=1)
        if training.loss_weighting == "inverse-variance":
            errors = errors / sigma.view(-1).clamp(min=training.weight_floor, max=training.weight_cap) ** training.weight_power
        loss = errors.sum() / len(idx)
        loss.backward()
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        losses[step] = loss.detach()
        if progress is not None:
            progress(1)
        # At the last step a held signal waits for the checkpoint's save instead (the runner's stop
        # context delivers it then): a snapshot of a finished training would only be trained again.
        stopping = stop is not None and stop.received is not None and step + 1 < training.steps
        save = snapshots is not None and (stopping or (step + 1 < training.steps
                                                      and time.monotonic() - last_saved >= snapshots.every_seconds))
        if save or step + 1 - checked >= CHECK_EVERY or step + 1 == training.steps:
            _check_finite(losses[checked:step + 1], checked)  # a snapshot never keeps a diverged state
            checked = step + 1
        if save:
            try:
                save_snapshot(snapshots, state.snapshot(step + 1, device))
            except OSError as exc:  # a snapshot is insurance: its failure must not fail the training
                warnings.warn(f"cannot save the training snapshot {snapshots.path} ({type(exc).__name__}: {exc}); "
                              "training goes on without it", RuntimeWarning, stacklevel=2)
            last_saved = time.monotonic()
        if stopping:
            stop.deliver()


def _check_finite(losses: torch.Tensor, first_step: int) -> None:
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        step = first_step + int(torch.nonzero(~finite)[0])
        raise ModelError(f"training diverged at step {step}: loss is {float(losses[step - first_step])}")


def checkpoint_key(fields: dict[str, Any]) -> str:
    """A short stable digest of everything that determines a trained model."""
    blob = json.dumps(fields, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def checkpoint_fields(arch: str, arch_version: str, arch_params: dict, image_class: str,
                      class_params: dict, image_size: int, n_train: int, subset: int, seed: int,
                      training: Training) -> dict[str, Any]:
    """The key fields of a checkpoint (kept inside it too, for provenance)."""
    return {
        "arch": arch, "arch_version": arch_version, "arch_params": dict(arch_params),
        "image_class": image_class, "class_params": dict(class_params), "image_size": image_size,
        "n_train": n_train, "subset": subset, "seed": seed, "training": asdict(training),
    }


#: A checkpoint's temporary file older than this is left by a dead run, whatever its host.
STALE_TEMP_SECONDS = 3600


def save_checkpoint(path: Path, model: torch.nn.Module, fields: dict, log: TrainingLog) -> None:
    """Write the trained model, its key fields and its training log (atomically, :func:`_atomic_save`)."""
    _atomic_save(path, {"state_dict": model.state_dict(), "fields": fields, "log": asdict(log)})


def save_snapshot(snapshots: Snapshots, state: dict) -> None:
    """Write a training state (:class:`Snapshots`) with its key fields (atomically)."""
    _atomic_save(snapshots.path, {**state, "fields": snapshots.fields})


def load_snapshot(snapshots: Snapshots, device: torch.device) -> dict | None:
    """The snapshot at ``snapshots.path`` if it exists, is readable, matches the fields and was
    made on ``device``'s type; else None."""
    if not snapshots.path.exists():
        return None
    try:
        blob = torch.load(snapshots.path, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable snapshot is not trusted: training starts over
        return None
    if (not isinstance(blob, dict) or blob.get("format", 1) != SNAPSHOT_FORMAT  # the first layout had no field
            or blob.get("fields") != _as_saved(snapshots.fields)
            or blob.get("device_type") != device.type):
        return None
    return {**blob, "path": str(snapshots.path)}


def _as_saved(fields: dict) -> dict:
    """Key fields as a checkpoint or snapshot reads them back (JSON values; others as text)."""
    return json.loads(json.dumps(fields, default=str))


def discard_snapshot(path: Path) -> None:
    """Remove the snapshot at ``path`` (its trained model is saved) and the temporary files of
    its saves left by killed runs (:func:`_atomic_save`'s rule)."""
    path.unlink(missing_ok=True)
    _remove_stale_temps(path)


def _atomic_save(path: Path, blob: dict) -> None:
    """``torch.save`` through a temporary file ``STEM.tmp-HOST-PID`` and a rename, so a killed
    run never leaves half a file. Temporary files of this path left by a killed run are removed:
    one of this host whose process is gone, or any over :data:`STALE_TEMP_SECONDS` old (another
    node of a shared file system: its pid means nothing here, but no save takes an hour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = path.parent / f"{path.stem}.tmp-{socket.gethostname()}-{os.getpid()}"
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed save (a full disk) leaves nothing behind


def _remove_stale_temps(path: Path) -> None:
    host = socket.gethostname()
    for stale in path.parent.glob(f"{path.stem}.tmp*"):
        if _is_stale_temp(stale, path.stem, host):
            stale.unlink(missing_ok=True)


def _is_stale_temp(temp: Path, stem: str, host: str) -> bool:
    owner = temp.name[len(f"{stem}.tmp"):]  # "-HOST-PID", or "PID" (before hosts were recorded)
    owner_host, _, pid = owner[1:].rpartition("-") if owner.startswith("-") else (host, "", owner)
    try:
        age = time.time() - temp.stat().st_mtime
    except OSError:
        return False
    if owner_host == host and pid.isdigit():
        return not pid_alive(int(pid))
    return age > STALE_TEMP_SECONDS


def load_checkpoint(path: Path, model: torch.nn.Module, fields: dict) -> TrainingLog | None:
    """Load ``path`` into ``model`` if it exists and matches ``fields``; else None, with
    ``model`` as it was (a state dict that fits in part is not left half-loaded)."""
    if not path.exists():
        return None
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("fields") != _as_saved(fields):
            return None
        log = TrainingLog(**blob["log"])
        model.load_state_dict(blob["state_dict"])
    except Exception:  # an unreadable checkpoint is retrained, not trusted
        model.load_state_dict(initial)
        return None
    model.eval()
    return log
