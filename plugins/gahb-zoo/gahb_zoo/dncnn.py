"""DnCNN with additive biases (Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian denoiser:
residual learning of deep CNN for image denoising", IEEE TIP 2017): BF-CNN's twin.

Same layers as the built-in ``bfcnn`` (``depth`` 3×3 convolutions of ``width`` channels at full
resolution, conv → ReLU, ``depth − 2`` × (conv → batch norm → ReLU), conv; noise residual
f(y) = y − r(y)), with the additive constants BF-CNN removes: the first and last convolutions
have a bias, and the batch norm subtracts its mean and adds a shift, x ↦ γ (x − μ)/s + β (the
hidden convolutions have none: the batch norm's mean subtraction would cancel it, and its
gradient would be 0). One more difference, not an additive one: ``nn.BatchNorm2d`` keeps a
running average of the variance where BF-CNN's keeps one of the standard deviation, so their
eval-mode scales differ slightly for the same batches. In eval mode the network
is affine between ReLU switches, f(y) = ∇f(y)·y + b(y), so it is not homogeneous: f(a·y) ≠ a·f(y).
Mohan et al. (ICLR 2020) show that this b(y) is what fails to generalize across noise levels.

Inductive biases: local (receptive field 2·depth + 1 pixels), translation equivariant (zero
padding aside), not homogeneous. At width 64 and depth 21: 704,065 parameters (BF-CNN: 702,784; the 1,281
more are the 19 × 64 shifts β and the 65 biases of the first and last convolutions).
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_bench.architectures.layers import INITS, initialize


class DnCNN(nn.Module):
    """DnCNN with biases; ``init`` as BF-CNN's (:func:`gahb_bench.architectures.layers.initialize`:
    the same weights, the biases and shifts β at 0)."""

    def __init__(self, channels: int = 1, depth: int = 21, width: int = 64, init: str = "public-code"):
        super().__init__()
        if depth < 3:
            raise ValueError(f"dncnn: depth must be at least 3, got {depth}")
        if width < 1:
            raise ValueError(f"dncnn: width must be at least 1, got {width}")
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        initialize(self, init)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.net(y)


def build_dncnn(channels: int, image_size: int, depth: int = 21, width: int = 64,
                init: str = "public-code") -> DnCNN:
    """Build the biased DnCNN; any image size works (no downsampling)."""
    if init not in INITS:
        raise ValueError(f"dncnn: init must be one of {', '.join(INITS)}, got {init!r}")
    return DnCNN(channels=channels, depth=int(depth), width=int(width), init=init)
