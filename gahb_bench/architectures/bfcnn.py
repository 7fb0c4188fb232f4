"""BF-CNN: the bias-free DnCNN of Mohan et al. (ICLR 2020), used in the paper's App. B.

``depth`` 3×3 convolutions at constant width and full resolution: conv → ReLU, then
``depth − 2`` × (conv → bias-free BN → ReLU), then conv back to the image channels. The network
predicts the noise; the module returns f(y) = y − r(y). No additive constants anywhere.
At width 64: 20 layers have 665,856 parameters, 21 layers (the default) 702,784.
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_bench.architectures.layers import INITS, full_resolution_stack, initialize
from gahb_bench.contracts import Architecture
from gahb_bench.hookspecs import hookimpl


class BFCNN(nn.Module):
    """Bias-free DnCNN with ``depth`` convolution layers of ``width`` channels, initialized by
    ``init`` (see :mod:`gahb_bench.architectures.layers`)."""

    def __init__(self, channels: int = 1, depth: int = 21, width: int = 64, init: str = "public-code"):
        super().__init__()
        if depth < 3:
            raise ValueError(f"bfcnn: depth must be at least 3, got {depth}")
        if width < 1:
            raise ValueError(f"bfcnn: width must be at least 1, got {width}")
        self.net = full_resolution_stack(channels, width, depth)
        initialize(self, init)

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """The predicted noise r(y)."""
        return self.net(y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.net(y)


def build_bfcnn(channels: int, image_size: int, depth: int = 21, width: int = 64,
                init: str = "public-code") -> BFCNN:
    """Build BF-CNN; any image size works (no downsampling)."""
    if init not in INITS:
        raise ValueError(f"bfcnn: init must be one of {', '.join(INITS)}, got {init!r}")
    return BFCNN(channels=channels, depth=int(depth), width=int(width), init=init)


@hookimpl
def gahb_register_architectures(register):
    register(
        Architecture(
            name="bfcnn",
            build=build_bfcnn,
            params={"depth": 21, "width": 64, "init": "public-code"},
            description="Bias-free DnCNN (Mohan et al. 2020): depth 3×3 conv layers, bias-free BN, noise residual.",
            biases={"locality": "local; global on images under 43 px",
                    "receptive_field": "2·depth + 1 px (43 at depth 21)",
                    "translation_equivariance": "yes (convolutions; zero padding)", "homogeneity": "yes (bias-free)",
                    "global_interactions": "no", "multiscale": "no (full resolution)"},
        )
    )
