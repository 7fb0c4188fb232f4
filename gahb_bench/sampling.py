"""Reverse-diffusion sampling with a blind denoiser (Kadkhodaie & Simoncelli 2021; SCIENCE.md §3).

A blind denoiser f gives the score of the noisy density at its own, implicit noise level,
f(y) − y = σ² ∇log p_σ(y), so it can be used to climb towards the image density with steps
whose size follows the noise level it measures itself. From y₀ ~ N(m, σ₀² Id), step t:

    d_t = f(y_{t−1}) − y_{t−1},            σ_t = ‖d_t‖ / √D,
    h_t = h₀ t / (1 + h₀ (t − 1)),         γ_t = σ_t √((1 − β h_t)² − (1 − h_t)²),
    y_t = y_{t−1} + h_t d_t + γ_t z_t,     z_t ~ N(0, Id),

until σ_t ≤ σ_L; the sample is f(y_T). β ∈ (0, 1] sets how much fresh noise is injected
(β = 1: none, a deterministic ascent); the effective noise shrinks by about (1 − β h_t) per step.

Batched: every image keeps its own σ_t and stops on its own (it is then frozen); z_t is drawn
for the whole batch at every step from a generator seeded by ``seed``, so two denoisers run with
the same ``seed`` start from the same y₀ and see the same z_t: their samples are paired (the
paper's Fig. 2). An image whose σ_t exceeds ``divergence_sigma`` (the public code: 2), or that
has not reached σ_L after ``max_steps``, is reported with its index, step and σ_t: never a NaN
returned silently, never an endless loop.

Defaults have two names: :data:`PAPER` (h₀ = 0.01, β = 0.1, σ_L = 0.05, as the paper's text) and
:data:`PUBLIC_CODE` (β = 0.01, σ_L = 0.01, the public code's ``univ_inv_sol``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from gahb_bench.errors import GahbError


class SamplerError(GahbError):
    """Some images diverged or did not converge; the message names them."""


@dataclass(frozen=True)
class SamplerSettings:
    """Parameters of :func:`sample` (see the module docstring for the recursion).

    h0 : first step size h₁ (the step grows towards 1 as h₀ t / (1 + h₀ (t − 1))).
    beta : noise injection, in (0, 1]; 1 is deterministic.
    sigma_0 : standard deviation of the initial noise y₀.
    sigma_final : σ_L, the effective noise level at which an image stops.
    init_mean : mean m of y₀ (0.5 puts it at the middle of the [0, 1] range).
    max_steps : the most steps an image may take before it is reported as not converging.
    divergence_sigma : an image whose σ_t exceeds it is reported as diverging.
    """

    h0: float = 0.01
    beta: float = 0.1
    sigma_0: float = 1.0
    sigma_final: float = 0.05
    init_mean: float = 0.5
    max_steps: int = 5000
    divergence_sigma: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.h0 <= 1:
            raise ValueError(f"h0 must be in (0, 1], got {self.h0}")
        if not 0 < self.beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {self.beta}")
        if not 0 < self.sigma_final < self.divergence_sigma:
            raise ValueError(f"need 0 < sigma_final < divergence_sigma, got {self.sigma_final}, "
                             f"{self.divergence_sigma}")
        if self.sigma_0 <= 0 or self.max_steps < 1:
            raise ValueError("sigma_0 must be positive and max_steps at least 1")

    def as_dict(self) -> dict:
        return asdict(self)


#: The paper's text: h₀ = 0.01, β = 0.1, σ_L = 0.05.
PAPER = SamplerSettings(h0=0.01, beta=0.1, sigma_final=0.05)
#: The public code's defaults (``univ_inv_sol``): β = 0.01, σ_L = 0.01.
PUBLIC_CODE = SamplerSettings(h0=0.01, beta=0.01, sigma_final=0.01)


@dataclass
class Samples:
    """What :func:`sample` returns.

    images : (B, C, H, W) float32 tensor, f(y_T) per image (NaN for images that failed when
        ``strict`` is False).
    steps : (B,) number of steps each image took.
    final_sigma : (B,) its last σ_t.
    failed : (B,) True where the image diverged or did not reach σ_L.
    messages : one line per failed image.
    """

    images: torch.Tensor
    steps: np.ndarray
    final_sigma: np.ndarray
    failed: np.ndarray
    messages: list


def step_size(t: int, h0: float) -> float:
    """h_t = h₀ t / (1 + h₀ (t − 1)), for t = 1, 2, …"""
    return h0 * t / (1.0 + h0 * (t - 1))


def noise_scale(sigma: torch.Tensor, h: float, beta: float) -> torch.Tensor:
    """γ_t = σ_t √((1 − β h)² − (1 − h)²): the noise that keeps the effective level at (1 − β h) σ_t."""
    return sigma * math.sqrt(max((1.0 - beta * h) ** 2 - (1.0 - h) ** 2, 0.0))


@torch.no_grad()
def sample(denoiser: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
           settings: SamplerSettings = PAPER, seed: int = 0, device: torch.device | str = "cpu",
           strict: bool = True, progress: Callable[[int], None] | None = None,
           initial: torch.Tensor | None = None) -> Samples:
    """Draw ``shape[0]`` samples of shape ``shape[1:]`` by reverse diffusion with ``denoiser``.

    ``denoiser`` maps a (B, C, H, W) batch to its denoised batch (a blind denoiser, in eval
    mode). ``seed`` fixes y₀ (unless ``initial`` is given) and every z_t. ``strict``: raise
    :class:`SamplerError` naming the failed images; otherwise return them as NaN with
    ``failed`` set. ``progress(1)`` is called after every step.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(int(seed))
    if initial is None:
        y = settings.init_mean + settings.sigma_0 * torch.randn(shape, generator=generator)
    else:
        y = initial.detach().to(torch.float32).cpu().clone()
        if tuple(y.shape) != tuple(shape):
            raise ValueError(f"initial has shape {tuple(y.shape)}, expected {tuple(shape)}")
    y = y.to(device)
    n = shape[0]
    dim = int(np.prod(shape[1:]))
    active = torch.ones(n, dtype=torch.bool, device=device)
    failed = np.zeros(n, dtype=bool)
    steps = np.zeros(n, dtype=np.int64)
    final_sigma = np.full(n, np.nan)
    messages: list[str] = []
    t = 0
    while bool(active.any()):
        t += 1
        h = step_size(t, settings.h0)
        # z_t for the whole batch, active or not, so pairing never depends on who has stopped
        z = torch.randn(shape, generator=generator).to(device)
        idx = torch.nonzero(active).flatten()
        current = y[idx]
        d = denoiser(current).float() - current
        sigma = d.flatten(1).norm(dim=1) / math.sqrt(dim)
        sigma_np = sigma.cpu().numpy().astype(np.float64)
        index_np = idx.cpu().numpy()
        final_sigma[index_np] = sigma_np
        steps[index_np] = t
        bad = ~np.isfinite(sigma_np) | (sigma_np > settings.divergence_sigma)
        done = ~bad & (sigma_np <= settings.sigma_final)
        for k in np.nonzero(bad)[0]:
            messages.append(f"image {index_np[k]} diverged at step {t}: sigma_t = {sigma_np[k]:.3g} "
                            f"> {settings.divergence_sigma:g}")
        late = ~bad & ~done & (t >= settings.max_steps)
        for k in np.nonzero(late)[0]:
            messages.append(f"image {index_np[k]} did not reach sigma_L = {settings.sigma_final:g} in "
                            f"{settings.max_steps} steps (sigma_t = {sigma_np[k]:.3g})")
        move = torch.as_tensor(~(bad | done | late), device=device)
        moving = idx[move]
        if len(moving):
            gamma = noise_scale(sigma[move], h, settings.beta).view(-1, *([1] * (len(shape) - 1)))
            y[moving] = current[move] + h * d[move] + gamma * z[moving]
        stopped = idx[~move]
        active[stopped] = False
        failed[index_np[bad | late]] = True
        if progress is not None:
            progress(1)
    images = denoiser(y).float()
    if failed.any():
        if strict:
            raise SamplerError(f"{int(failed.sum())} of {n} images failed: " + "; ".join(messages[:5])
                               + ("; …" if len(messages) > 5 else ""))
        images[torch.as_tensor(failed, device=images.device)] = float("nan")
    return Samples(images=images, steps=steps, final_sigma=final_sigma, failed=failed, messages=messages)
