"""Bias-free building blocks shared by the built-in architectures.

A network without additive constants is positively homogeneous in eval mode,
f(a·y) = a·f(y) for a > 0, so f(y) = ∇f(y)·y: the denoiser is an adaptive linear
shrinkage (Mohan, Kadkhodaie, Simoncelli, Fernandez-Granda, "Robust and interpretable blind
image denoising via bias-free convolutional neural networks", ICLR 2020).
"""

from __future__ import annotations

import torch
from torch import nn


class BiasFreeBatchNorm2d(nn.Module):
    """Batch norm without mean subtraction or shift: x ↦ γ · x / s.

    In training, s is the per-channel standard deviation of the batch,
    s = sqrt(Var_batch[x] + ε) (biased variance over batch and pixels); a running average of s
    (momentum 0.1) replaces it in eval mode, where the layer is linear. γ is learnable,
    initialized to 1 (the public code draws it near 1; 1 keeps initialization deterministic
    and scale-free).
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.register_buffer("running_sd", torch.ones(1, channels, 1, 1))
        self.eps = eps
        self.momentum = momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + self.eps)
            with torch.no_grad():
                self.running_sd.mul_(1 - self.momentum).add_(self.momentum * sd.detach())
        else:
            sd = self.running_sd
        return x / sd * self.gamma


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3×3 convolution with zero padding and no bias."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """conv3×3 → bias-free BN → ReLU, the unit every hidden layer is made of."""
    return nn.Sequential(conv3x3(c_in, c_out), BiasFreeBatchNorm2d(c_out), nn.ReLU(inplace=True))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (buffers such as running_sd excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
