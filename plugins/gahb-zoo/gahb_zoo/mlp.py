"""An MLP denoiser: the image as one vector, fully connected layers.

For y ∈ ℝ^D (D = C·H·W pixels, flattened)::

    r(y) = W_L σ(W_{L−1} ⋯ σ(W_1 y)),   f(y) = y − r(y),   σ = ReLU

with ``depth`` = L linear maps, hidden width ``width``; the last map starts at zero, so f = Id
at initialization. With ``bias=True`` every map also adds a constant, W_ℓ h + b_ℓ.

Inductive biases: none of the spatial ones. No locality (every output pixel depends on every
input pixel), no translation equivariance (a shifted image meets other weights), no multiscale
structure; homogeneous (f(a·y) = a·f(y)) without biases, the default, so that it differs from the
bias-free UNet in its spatial biases only. The theory predicts it memorizes to larger N than the
convolutional networks and that its GAHB is not adapted to edges. Parameters at 16 × 16 pixels,
width 512, depth 3: 524,288 (they grow with D: 327,680 at 8 × 8).
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected denoiser on images of ``channels × image_size²`` pixels."""

    def __init__(self, channels: int, image_size: int, width: int = 512, depth: int = 3, bias: bool = False):
        super().__init__()
        if depth < 2:
            raise ValueError(f"mlp: depth must be at least 2, got {depth}")
        if width < 1:
            raise ValueError(f"mlp: width must be at least 1, got {width}")
        self.shape = (channels, image_size, image_size)
        d = channels * image_size * image_size
        sizes = [d] + [width] * (depth - 1) + [d]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < depth - 1:
                layers.append(nn.ReLU(inplace=True))
        nn.init.zeros_(layers[-1].weight)
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if tuple(y.shape[1:]) != self.shape:
            raise ValueError(f"mlp: built for images of shape {self.shape}, got {tuple(y.shape[1:])}")
        return y - self.net(y.flatten(1)).view_as(y)


def build_mlp(channels: int, image_size: int, width: int = 512, depth: int = 3, bias: bool = False) -> MLP:
    """Build the MLP for ``image_size × image_size`` images (its input size is fixed)."""
    if not isinstance(bias, bool):
        raise ValueError(f"mlp: bias must be true or false, got {bias!r}")
    return MLP(channels, image_size, width=int(width), depth=int(depth), bias=bias)
