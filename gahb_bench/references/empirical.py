"""The empirical optimal denoiser of a training set: what a perfect memorizer learns.

If x is uniform on the N training images {x_i}, the MMSE denoiser of y = x + z, z ~ N(0, σ² Id), is

    f_N(y) = E[x | y] = Σ_i w_i(y) x_i,   w_i(y) = softmax_i(−‖y − x_i‖² / 2σ²),

a convex combination of training images: at small σ it returns the nearest training image, and
its samples are copies of training images (Gu et al. 2023, "On memorization in diffusion models";
SCIENCE.md §9). A network whose output is close to f_N has memorized its training set.

Computation: −‖y − x_i‖²/2σ² = (2⟨y, x_i⟩ − ‖x_i‖²)/2σ² − ‖y‖²/2σ², and the last term cancels in
the softmax. The inner products come from matrix products over chunks of ``chunk`` training
images; the softmax is accumulated across chunks by :class:`~gahb_bench.references.common.SoftmaxAverage`
(a running maximum: exact at any σ), so memory is O(B · chunk) besides the inputs.
Cost O(B · N · D) multiply-adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gahb_bench.contracts import Reference
from gahb_bench.hookspecs import hookimpl
from gahb_bench.references.common import SoftmaxAverage, training_batch


def _rows(train, start: int, chunk: int, dim: int, device, dtype) -> torch.Tensor:
    """Training images ``start:start + chunk`` as (n, D) rows of ``dtype`` on ``device`` (a view,
    no copy, when ``train`` is already such a tensor)."""
    if isinstance(train, torch.Tensor):
        return train[start:start + chunk].reshape(-1, dim).to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(train[start:start + chunk])).reshape(-1, dim).to(device=device, dtype=dtype)


@torch.no_grad()
def empirical_denoise(train, noisy, sigma: float, chunk: int = 4096, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float64, square_norms: torch.Tensor | None = None) -> np.ndarray:
    """f_N(noisy) for the training images ``train`` (N, C, H, W) at noise level ``sigma``.

    ``noisy`` (B, C, H, W) → (B, C, H, W) as a numpy array of ``noisy``'s float dtype.
    ``train`` may be a numpy array (converted chunk by chunk) or a tensor of ``dtype`` (used in
    place); ``square_norms`` (N,), ‖x_i‖², when already known.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    noisy_np = np.asarray(noisy)
    shape = noisy_np.shape
    y = torch.as_tensor(noisy_np).reshape(len(noisy_np), -1).to(device=device, dtype=dtype)
    n_train = len(train)
    if n_train == 0:
        raise ValueError("the training set is empty")
    scale = 1.0 / (2.0 * float(sigma) ** 2)
    average = SoftmaxAverage((len(y),), y.shape[1], dtype, device)
    for start in range(0, n_train, chunk):
        x = _rows(train, start, chunk, y.shape[1], device, dtype)
        norms = (x * x).sum(dim=1) if square_norms is None else square_norms[start:start + chunk].to(device, dtype)
        # logits = (2⟨y, x_i⟩ − ‖x_i‖²)/2σ², the bias folded into the matrix product (addmm), then
        # turned into weights in place: the elementwise passes over the (B, chunk) block are what
        # costs beside the two products when D is small.
        average.add(torch.addmm(norms[None], y, x.T, beta=-scale, alpha=2.0 * scale), x)
    out = average.mean().reshape(shape)
    return out.cpu().numpy().astype(noisy_np.dtype if noisy_np.dtype.kind == "f" else np.float64)


#: Training sets of at most this many pixels in all (N·D; 1 GiB in float64) are kept in float64
#: by the fit, with their squared norms: each call then runs the two matrix products alone
#: (measured at 16 px, B = 16: 0.41–0.53 of the float64 matrix-multiply rate against 0.27–0.37
#: when each chunk is converted per call; ``benchmarks/bench_references.py``). Larger ones are
#: kept in float32 and converted chunk by chunk.
FLOAT64_PIXELS = 1 << 27


@dataclass(frozen=True)
class EmpiricalFit:
    """The training images (float32), the chunk of them compared at once, and, for sets of at
    most ``FLOAT64_PIXELS`` pixels, the images as float64 rows with their squared norms."""

    images: np.ndarray
    chunk: int
    rows: torch.Tensor | None = None
    square_norms: torch.Tensor | None = None


def fit_empirical(train_images, chunk: int = 4096) -> EmpiricalFit:
    """The empirical optimum's state is its training set (in float64 too, when small enough)."""
    images = np.ascontiguousarray(training_batch(train_images, np.float32))
    if images.size > FLOAT64_PIXELS:
        return EmpiricalFit(images, int(chunk))
    rows = torch.from_numpy(images).reshape(len(images), -1).to(torch.float64)
    return EmpiricalFit(images, int(chunk), rows, (rows * rows).sum(dim=1))


def denoise_fitted(state: EmpiricalFit, noisy, sigma: float) -> np.ndarray:
    """f_N(noisy) for a fitted state (the registered ``denoise``)."""
    if state.rows is None:
        return empirical_denoise(state.images, noisy, sigma, chunk=state.chunk)
    return empirical_denoise(state.rows, noisy, sigma, chunk=state.chunk, square_norms=state.square_norms)


@hookimpl
def gahb_register_references(register):
    register(Reference(name="empirical", fit=fit_empirical, denoise=denoise_fitted, params={"chunk": 4096},
                       description="the empirical optimum f_N (softmax-weighted training images): a pure memorizer"))
