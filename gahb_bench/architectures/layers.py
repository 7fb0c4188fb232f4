"""Bias-free building blocks shared by the built-in architectures, and their initializations.

A network without additive constants is positively homogeneous in eval mode,
f(a·y) = a·f(y) for a > 0, so f(y) = ∇f(y)·y: the denoiser is an adaptive linear
shrinkage (Mohan, Kadkhodaie, Simoncelli, Fernandez-Granda, "Robust and interpretable blind
image denoising via bias-free convolutional neural networks", ICLR 2020).

Initializations (:func:`initialize`, the ``init`` parameter of the built-in architectures):

``"public-code"`` (the default; it reproduces the paper)
    as the paper's public code (``network.py``, ``dataloader_func.weights_init_kaiming``):
    every convolution and transposed convolution Kaiming-normal with fan-in,
    w ~ N(0, 2 / fan_in); every batch-norm gain γ = clamp(ε · 2/(9·64), −0.025, 0.025),
    ε ~ N(0, 1): γ starts near 0 (std 0.0035), so the residual starts near 0 and f ≈ Id.
``"unit-gain"``
    PyTorch's default convolution init (Kaiming-uniform with a = √5) and γ = 1: the residual
    at initialization has a standard deviation of order 0.4 on [0, 1] images.
"""

from __future__ import annotations

import torch
from torch import nn

#: The initializations :func:`initialize` knows.
INITS = ("public-code", "unit-gain")
#: The public code's batch-norm gain: randn · 2/9/64, clamped to ±0.025.
PUBLIC_GAMMA_SCALE = 2.0 / 9.0 / 64.0
PUBLIC_GAMMA_CLAMP = 0.025


class BiasFreeBatchNorm2d(nn.Module):
    """Batch norm without mean subtraction or shift: x ↦ γ · x / s.

    In training, s is the per-channel standard deviation of the batch,
    s = sqrt(Var_batch[x] + ε) (biased variance over batch and pixels); a running average of s
    (momentum 0.1) replaces it in eval mode, where the layer is linear. γ is learnable; it is
    created equal to 1 and set by :func:`initialize` (near 0 with the public code's init).
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


def initialize(module: nn.Module, init: str = "public-code") -> nn.Module:
    """Initialize ``module``'s convolutions and batch norms in place; returns it.

    ``init`` is one of :data:`INITS` (see the module docstring). Draws come from torch's
    global generator, so ``torch.manual_seed`` before building makes them reproducible. The
    additive constants of a network that has them (convolution biases, the shift β of a
    ``torch.nn.BatchNorm2d``, whose gain γ is set as a bias-free batch norm's) start at 0, so a
    biased network starts from the same weights as its bias-free twin.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if init == "public-code":
                # fan_in of a transposed conv's (in, out, k, k) weight is out·k·k, as in the public code
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                m.reset_parameters()
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (BiasFreeBatchNorm2d, nn.BatchNorm2d)):
            gain = m.gamma if isinstance(m, BiasFreeBatchNorm2d) else m.weight
            with torch.no_grad():
                if init == "public-code":
                    gain.copy_((torch.randn_like(gain) * PUBLIC_GAMMA_SCALE).clamp_(-PUBLIC_GAMMA_CLAMP,
                                                                                   PUBLIC_GAMMA_CLAMP))
                else:
                    gain.fill_(1.0)
                if isinstance(m, nn.BatchNorm2d):
                    m.bias.zero_()
    return module


def full_resolution_stack(channels: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` bias-free 3×3 convolutions at full resolution: conv → ReLU, ``depth − 2`` ×
    (conv → bias-free BN → ReLU), conv back to ``channels`` (BF-CNN's body, and the local CNN's)."""
    layers: list[nn.Module] = [conv3x3(channels, width), nn.ReLU(inplace=True)]
    layers += [conv_bn_relu(width, width) for _ in range(depth - 2)]
    layers.append(conv3x3(width, channels))
    return nn.Sequential(*layers)


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3×3 convolution with zero padding and no bias."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """conv3×3 → bias-free BN → ReLU, the unit every hidden layer is made of."""
    return nn.Sequential(conv3x3(c_in, c_out), BiasFreeBatchNorm2d(c_out), nn.ReLU(inplace=True))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (buffers such as running_sd excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
