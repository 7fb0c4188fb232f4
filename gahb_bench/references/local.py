"""Local patch denoisers of a training set: locality, and locality with translation equivariance.

Both are empirical optima restricted to a P×P neighbourhood (P odd). For a pixel p let y_P(p)
be the P×P patch of y centred at p (all channels; pixels outside the image are 0 — zero padding,
the same for noisy and training images, so a patch at the border is compared with patches that
have their zeros in the same places only when they come from the same border).

* ``local`` (LS, locality only): each output pixel is the posterior mean of the centre pixel
  given the patch, under the training patches *at the same location*,

      f(y)(p) = Σ_i w_i(p) x_i(p),   w_i(p) = softmax_i(−‖y_P(p) − x_{i,P}(p)‖² / 2σ²).

  With P = 1 it is the per-pixel posterior mean; with P ≥ 2·max(H, W) − 1 every patch holds the
  whole image and it is exactly the empirical optimum f_N.
* ``equivariant-local`` (ELS, locality and translation equivariance; the "equivariant local
  score machine" of Kamb & Ganguli 2024, the patch denoisers of Niedoba et al. 2024): the same
  average over the training patches *of every location of the same border class*,

      f(y)(p) = Σ_{i, q ∈ L(p)} w_{i,q}(p) x_i(q),
      w_{i,q}(p) = softmax_{i, q ∈ L(p)}(−‖y_P(p) − x_{i,P}(q)‖² / 2σ²).

  L(p), as Kamb & Ganguli do for zero-padded networks: along each axis a pixel within P//2 of
  a border is matched only with the same offset from that border (its patch has its zeros in
  the same places), an interior pixel with every interior position (patches wholly inside the
  image). A network with zero padding can tell where the border is, and only there. With P = 1
  every pixel is interior (full equivariance); with P > max(H, W) every pixel is its own class
  and ELS is exactly LS (so f_N from P ≥ 2·max(H, W) − 1 on).

Computation, as for :mod:`gahb_bench.references.empirical`: the squared distance is
‖y_P‖² − 2⟨y_P, x_P⟩ + ‖x_P‖², the first term cancels in the softmax, ‖x_P‖² is computed once
at fit time (box sums), and the softmax is accumulated over chunks of training images by
:class:`~gahb_bench.references.common.SoftmaxAverage` (exact at any σ). ``local``:
per location, the inner products of the query patches with the training patches there are one
small matrix product, all locations batched (B·N·HW·C·P² multiply-adds); its inner dimension is
only C·P², so it runs far below the machine's matrix-product rate (``benchmarks/bench_references.py``
prints the bound). (Box sums of the pixel products
y·x_i would need only B·N·HW·(C + 2P) operations but ran slower, far from matrix-product speed:
2.9 s against 1.7 s per call at 16×16, B = 16, N = 20000, P = 5.) ``equivariant-local``: the inner products of all query patches
with all training patches are matrix products of gathered patches, one border class at a time, (B·|L| × C P²) by (C P² × N·|L|), in blocks of at most
:data:`BLOCK` entries; cost at most B N (HW)² C P² multiply-adds and B N (HW)² exponentials
(mostly the interior class). Float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gahb_bench.contracts import Reference
from gahb_bench.hookspecs import hookimpl
from gahb_bench.references.common import SoftmaxAverage, training_batch

#: The most entries of a (queries × training) block held at once (float64: 128 MiB).
BLOCK = 1 << 24


@dataclass(frozen=True)
class PatchFit:
    """The training images zero-padded by P//2 and laid out pixel-major, (H + 2·(P//2),
    W + 2·(P//2), C, N) float64 (:func:`_padded_pixel_major`), the patch size, and the squared
    norms ‖x_{i,P}(p)‖² of every training patch, pixel-major (H·W, N)."""

    padded: torch.Tensor
    patch_size: int
    square_norms: torch.Tensor

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the training images."""
        half = self.patch_size // 2
        return self.padded.shape[2], self.padded.shape[0] - 2 * half, self.padded.shape[1] - 2 * half

    def __len__(self) -> int:
        return self.padded.shape[3]


def box_sum(z: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The sum of ``z`` (…, H, W) over the P×P window centred at each pixel, zeros outside."""
    shape = z.shape
    flat = z.reshape(-1, 1, *shape[-2:])
    half = patch_size // 2
    # Two 1-D passes (separable box); avg_pool2d with count_include_pad averages over P, zeros
    # included, so × P restores the sum.
    flat = F.avg_pool2d(flat, (patch_size, 1), stride=1, padding=(half, 0), count_include_pad=True)
    flat = F.avg_pool2d(flat, (1, patch_size), stride=1, padding=(0, half), count_include_pad=True)
    return (flat * patch_size**2).reshape(shape)


def fit_patches(train_images, patch_size: int = 5) -> PatchFit:
    """State of ``local`` and ``equivariant-local``: the images, padded and pixel-major (their
    patches are gathered chunk by chunk at denoising time, :func:`_windows`), and their patches'
    squared norms, as box sums of the squared pixels. Memory: the training set's, times
    (H + P − 1)(W + P − 1)/HW for the padding, plus N·H·W for the norms."""
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd number (a centred patch), got {patch_size}")
    x = torch.from_numpy(training_batch(train_images))
    square_norms = box_sum((x * x).sum(dim=1), patch_size).flatten(1).T.contiguous()  # (HW, N)
    return PatchFit(_padded_pixel_major(x, patch_size // 2), int(patch_size), square_norms)


def _query(state: PatchFit, noisy, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    y = torch.as_tensor(np.asarray(noisy), dtype=torch.float64)
    if y.ndim != 4 or tuple(y.shape[1:]) != state.image_shape:
        raise ValueError(f"noisy images must be (B, {', '.join(map(str, state.image_shape))}), "
                         f"got {tuple(y.shape)}")
    return y


def _padded_pixel_major(images: torch.Tensor, half: int) -> torch.Tensor:
    """``images`` (n, C, H, W) zero-padded by ``half`` on every side, laid out (H + 2·half,
    W + 2·half, C, n): the images are the fastest axis, so that one pixel of a patch across a
    chunk of images is one contiguous row."""
    return F.pad(images, (half, half, half, half)).permute(2, 3, 1, 0).contiguous()


def _windows(padded: torch.Tensor, height: int, width: int, size: int) -> torch.Tensor:
    """The P×P patches of a padded pixel-major chunk (:func:`_padded_pixel_major`, or a slice of
    one along its last axis) as a strided view, no copy: (H, W, C, P, P, n) with
    ``[i, j, c, dy, dx, k] = padded[i + dy, j + dx, c, k]`` (the order of ``unfold``'s C·P²)."""
    row, col, chan, image = padded.stride()
    return padded.as_strided((height, width, padded.shape[2], size, size, padded.shape[3]),
                             (row, col, chan, row, col, image))


def _query_patches(y: torch.Tensor, size: int) -> torch.Tensor:
    """The P×P patches (zero padding) of the query images ``y`` (B, C, H, W) at every pixel:
    (H, W, B, C·P²), gathered from :func:`_windows` like the training patches."""
    batch, _, height, width = y.shape
    windows = _windows(_padded_pixel_major(y, size // 2), height, width, size)  # (H, W, C, P, P, B)
    return windows.permute(0, 1, 5, 2, 3, 4).reshape(height, width, batch, -1)


@torch.no_grad()
def local_denoise(state: PatchFit, noisy, sigma: float) -> np.ndarray:
    """``local`` (LS) at noise level ``sigma`` for ``noisy`` (B, C, H, W); float64.

    Per location p, the inner products of the B query patches with the N training patches at p
    form one small matrix product; all H·W of them run as one batched product (``bmm``), chunk
    by chunk of training images. A chunk's patches are gathered straight into the layout the
    product reads, (H·W, C·P², n) with the images contiguous: one copy from a strided view of
    the padded training set kept by the fit (``unfold`` and its transposes made three, and took
    two thirds of the call).
    """
    y = _query(state, noisy, sigma)
    size = state.patch_size
    batch, channels, height, width = y.shape
    pixels, half = height * width, size // 2
    scale = 1.0 / (2.0 * float(sigma) ** 2)
    queries = _query_patches(y, size).reshape(pixels, batch, -1)  # (HW, B, C·P²)
    average = SoftmaxAverage((pixels, batch), channels)
    chunk = max(1, BLOCK // (pixels * max(batch, queries.shape[2])))
    for start in range(0, len(state), chunk):
        part = state.padded[..., start:start + chunk]  # (H + 2h, W + 2h, C, n)
        patches = _windows(part, height, width, size).reshape(pixels, channels * size * size, -1)  # (HW, C·P², n)
        square = state.square_norms[:, None, start:start + chunk]  # (HW, 1, n)
        logits = torch.baddbmm(square, queries, patches, beta=-scale, alpha=2.0 * scale)  # (HW, B, n)
        centre = part[half:half + height, half:half + width].reshape(pixels, channels, -1)  # (HW, C, n)
        average.add(logits, centre.transpose(1, 2))  # centre pixels (HW, n, C)
    return average.mean().permute(1, 2, 0).reshape(batch, channels, height, width).numpy()


def _axis_classes(n: int, patch_size: int) -> list[slice]:
    """Along one axis of length ``n``: each position within P//2 of a border is its own class,
    the interior positions (if any) one class together."""
    half = patch_size // 2
    interior = range(half, n - half)
    border = [p for p in range(n) if p not in interior]
    return [slice(p, p + 1) for p in border] + ([slice(interior.start, interior.stop)] if interior else [])


def border_classes(height: int, width: int, patch_size: int) -> list[tuple[slice, slice]]:
    """The border classes L of ``equivariant-local`` as (rows, columns) slices: a pixel's class
    along each axis is its own position within P//2 of a border, the interior otherwise."""
    return [(rows, cols) for rows in _axis_classes(height, patch_size) for cols in _axis_classes(width, patch_size)]


@torch.no_grad()
def equivariant_local_denoise(state: PatchFit, noisy, sigma: float) -> np.ndarray:
    """``equivariant-local`` (ELS) at noise level ``sigma`` for ``noisy`` (B, C, H, W); float64.

    Per border class L, one matrix product of the query patches (|L|·B × C·P²) with the training
    patches of every location of L (C·P² × |L|·n), chunk by chunk of training images; both are
    gathered from strided views of the padded images (:func:`_windows`), one copy each."""
    y = _query(state, noisy, sigma)
    size = state.patch_size
    batch, channels, height, width = y.shape
    half, depth = size // 2, channels * size * size
    scale = 1.0 / (2.0 * float(sigma) ** 2)
    query_patches = _query_patches(y, size)  # (H, W, B, C·P²)
    square_norms = state.square_norms.view(height, width, -1)  # (H, W, N)
    out = torch.empty((batch, channels, height, width), dtype=torch.float64)
    for rows_l, cols_l in border_classes(height, width, size):
        n_rows, n_cols = rows_l.stop - rows_l.start, cols_l.stop - cols_l.start
        located = n_rows * n_cols
        queries = query_patches[rows_l, cols_l].reshape(-1, depth)  # (|L|·B, C·P²)
        block = max(1, min(len(queries), BLOCK // located))
        # Training images per block of columns: the logits (block × |L|·n) and the gathered
        # patches (C·P² × |L|·n) each hold at most BLOCK entries.
        per_chunk = max(1, BLOCK // (max(block, depth) * located))
        result = torch.empty((len(queries), channels), dtype=torch.float64)
        for r0 in range(0, len(queries), block):
            q = queries[r0:r0 + block]
            average = SoftmaxAverage((len(q),), channels)
            for start in range(0, len(state), per_chunk):
                part = state.padded[..., start:start + per_chunk]
                patches = _windows(part, height, width, size)[rows_l, cols_l]  # (|R|, |C|, C, P, P, n)
                patches = patches.permute(2, 3, 4, 0, 1, 5).reshape(depth, -1)  # (C·P², |L|·n)
                square = square_norms[rows_l, cols_l, start:start + per_chunk].reshape(1, -1)
                logits = torch.addmm(square, q, patches, beta=-scale, alpha=2.0 * scale)
                centres = part[half + rows_l.start:half + rows_l.stop, half + cols_l.start:half + cols_l.stop]
                average.add(logits, centres.permute(0, 1, 3, 2).reshape(-1, channels))  # (|L|·n, C)
            result[r0:r0 + len(q)] = average.mean()
        out[:, :, rows_l, cols_l] = result.reshape(n_rows, n_cols, batch, channels).permute(2, 3, 0, 1)
    return out.numpy()


@hookimpl
def gahb_register_references(register):
    register(Reference(name="local", fit=fit_patches, denoise=local_denoise, params={"patch_size": 5},
                       description="LS: posterior mean of each pixel given its P×P patch, training patches "
                                   "at the same location"))
    register(Reference(name="equivariant-local", fit=fit_patches, denoise=equivariant_local_denoise,
                       params={"patch_size": 5},
                       description="ELS: the same with the training patches of every location of the same "
                                   "border class (locality + translation equivariance)"))
