"""A local CNN: bias-free convolutions at full resolution with a fixed, small receptive field.

``(receptive_field − 1)/2`` 3×3 convolutions of ``width`` channels: conv → ReLU, then
conv → bias-free batch norm → ReLU for the hidden layers, then conv back to the image channels;
noise residual f(y) = y − r(y). Each output pixel depends only on the
``receptive_field × receptive_field`` neighbourhood of its input pixel, so the Jacobian ∇f(y) is
banded: row i is zero outside that window. No downsampling, no additive constants.

Inductive biases: local (receptive field a parameter, 9 × 9 by default), translation
equivariant (zero padding aside), homogeneous (f(a·y) = a·f(y)). The closed-form patch
denoisers of the reference-agreement metric (``local``, ``equivariant-local``) are what such a
network could at best become; the theory predicts it agrees with them at patch sizes near its
receptive field. At width 128 and receptive field 9: 297,472 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_bench.architectures.layers import INITS, full_resolution_stack, initialize


class LocalCNN(nn.Module):
    """Bias-free CNN whose receptive field is ``receptive_field`` pixels (odd, ≥ 5)."""

    def __init__(self, channels: int = 1, receptive_field: int = 9, width: int = 128, init: str = "public-code"):
        super().__init__()
        if receptive_field < 5 or receptive_field % 2 == 0:
            raise ValueError(f"local-cnn: receptive_field must be odd and at least 5, got {receptive_field}")
        if width < 1:
            raise ValueError(f"local-cnn: width must be at least 1, got {width}")
        depth = (receptive_field - 1) // 2  # each 3×3 layer widens the field by 2
        self.net = full_resolution_stack(channels, width, depth)
        self.receptive_field = receptive_field
        initialize(self, init)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.net(y)


def build_local_cnn(channels: int, image_size: int, receptive_field: int = 9, width: int = 128,
                    init: str = "public-code") -> LocalCNN:
    """Build the local CNN; any image size works."""
    if init not in INITS:
        raise ValueError(f"local-cnn: init must be one of {', '.join(INITS)}, got {init!r}")
    if isinstance(receptive_field, bool) or not isinstance(receptive_field, int):
        raise ValueError(f"local-cnn: receptive_field must be an integer, got {receptive_field!r}")
    return LocalCNN(channels=channels, receptive_field=receptive_field, width=int(width), init=init)
