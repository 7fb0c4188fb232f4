"""A template gahb-bench plugin: registers the architecture ``tiny-cnn``.

Copy this folder, rename the distribution, the package and the architecture, and replace
``TinyCNN`` with your network. The contract: ``build(channels, image_size, **params)`` returns
a ``torch.nn.Module`` mapping a noisy batch (B, C, H, W) to the denoised batch, same shape,
without ever receiving the noise level.
"""

import torch
from torch import nn

import gahb_bench


class TinyCNN(nn.Module):
    """``depth`` 3×3 convolutions with ReLUs, no biases, predicting the noise: f(y) = y − r(y).

    No additive constants, so f(a·y) = a·f(y): the bias-free property gahb-bench measures.
    """

    def __init__(self, channels: int, depth: int, width: int):
        super().__init__()
        layers = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.net(y)


def build(channels: int, image_size: int, depth: int = 4, width: int = 16) -> nn.Module:
    if depth < 2:
        raise ValueError(f"tiny-cnn: depth must be at least 2, got {depth}")
    return TinyCNN(channels, depth, width)


@gahb_bench.hookimpl
def gahb_register_architectures(register):
    register(gahb_bench.Architecture(
        name="tiny-cnn",
        build=build,
        params={"depth": 4, "width": 16},
        description="Template plugin: a small bias-free CNN (depth conv layers of width channels).",
    ))
