"""Blind denoiser training (SCIENCE.md §4) and the checkpoint cache.

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
import socket
import time
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


def batch_indices(n: int, steps: int, batch_size: int, generator: torch.Generator):
    """Yield ``steps`` index batches dealt from consecutive random permutations of range(n),
    drawn on the generator's device."""
    device = generator.device
    buffer = torch.empty(0, dtype=torch.long, device=device)
    for _ in range(steps):
        while len(buffer) < batch_size:
            repeats = max(1, math.ceil((batch_size - len(buffer)) / n))
            fresh = torch.cat([torch.randperm(n, generator=generator, device=device) for _ in range(repeats)])
            buffer = torch.cat([buffer, fresh])
        yield buffer[:batch_size]
        buffer = buffer[batch_size:]


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


#: Steps between two checks that the loss is finite: the only moments training waits for the
#: device (a check per step would stall a GPU's queue at every step).
CHECK_EVERY = 100


def train_denoiser(
    model: torch.nn.Module,
    images: np.ndarray,
    training: Training,
    seed: int,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
    acceleration: Acceleration = Acceleration(),
) -> TrainingLog:
    """Train ``model`` in place on ``images`` (N, C, H, W) with the blind recipe.

    Everything stays on ``device``: the training set is copied there once, and each step's batch
    indices, σ and noise are drawn there, from one stream seeded by ``seed`` (on a GPU, the
    device's generator: a GPU run draws other noise than a CPU run of the same seed); the loss
    is read back every :data:`CHECK_EVERY` steps only, so no step waits for the host.
    ``acceleration`` applies the optional speed-ups of :mod:`gahb_bench.acceleration` (none by
    default: strict float32). ``progress(k)`` is called after every k steps (for a progress
    bar). Raises :class:`ModelError` when the loss becomes non-finite.
    """
    generator = torch.Generator(device=device).manual_seed(int(seed))
    data = torch.as_tensor(images, dtype=torch.float32).to(device)
    model.to(device).train()
    forward = acceleration.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr)
    scheduler = None
    if training.halve_every:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=training.halve_every, gamma=0.5)
    tail = max(1, training.steps // 20)
    losses = torch.empty(training.steps, device=device)
    start = time.perf_counter()
    with acceleration.float_mode(training=True):
        _steps(forward, data, training, generator, optimizer, scheduler, losses, progress)
    model.eval()
    values = losses.cpu().numpy().astype(np.float64)
    change, change_se = loss_change(values)
    return TrainingLog(training.steps, float(np.mean(values[-tail:])), time.perf_counter() - start, str(device),
                       loss_profile(values).tolist(), change, change_se)


def _steps(forward, data, training, generator, optimizer, scheduler, losses, progress) -> None:
    """The training loop of :func:`train_denoiser` (losses written into ``losses``)."""
    device, checked = data.device, 0
    for step, idx in enumerate(batch_indices(len(data), training.steps, training.batch_size, generator)):
        x = data[idx]
        sigma = draw_sigmas(len(idx), training, generator).view(-1, 1, 1, 1)
        noise = torch.randn(x.shape, generator=generator, device=device) * sigma
        optimizer.zero_grad(set_to_none=True)
        errors = ((forward(x + noise) - x) ** 2).flatten(1).sum(dim=1)
        if training.loss_weighting == "inverse-variance":
            errors = errors / sigma.view(-1).clamp(min=training.weight_floor, max=training.weight_cap) ** training.weight_power
        loss = errors.sum() / len(idx)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses[step] = loss.detach()
        if progress is not None:
            progress(1)
        if step + 1 - checked >= CHECK_EVERY or step + 1 == training.steps:
            _check_finite(losses[checked:step + 1], checked)
            checked = step + 1


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
    """Write atomically (a temporary file ``KEY.tmp-HOST-PID``, then a rename), so a killed run
    never leaves half a file. Temporary files of this key left by a killed run are removed: one
    of this host whose process is gone, or any over :data:`STALE_TEMP_SECONDS` old (another
    node of a shared file system: its pid means nothing here, but no save takes an hour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for stale in path.parent.glob(f"{path.stem}.tmp*"):
        if _is_stale_temp(stale, path.stem, host):
            stale.unlink(missing_ok=True)
    tmp = path.parent / f"{path.stem}.tmp-{host}-{os.getpid()}"
    try:
        torch.save({"state_dict": model.state_dict(), "fields": fields, "log": asdict(log)}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed save (a full disk) leaves nothing behind


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
    """Load ``path`` into ``model`` if it exists and matches ``fields``; else None."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("fields") != json.loads(json.dumps(fields, default=str)):
            return None
        model.load_state_dict(blob["state_dict"])
    except Exception:  # an unreadable checkpoint is retrained, not trusted
        return None
    model.eval()
    return TrainingLog(**blob["log"])
