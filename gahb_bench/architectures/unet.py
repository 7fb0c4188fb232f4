"""The paper's bias-free UNet (Kadkhodaie et al. 2024, App. A, Table 1).

Level ℓ of the encoder has ``width·2^ℓ`` channels and two 3×3 convolutions; levels are joined
by 2×2 average pooling (down) and 2×2 transposed convolutions (up) with skip concatenation; the
middle block has twice the deepest width. Every convolution except the first and the last is
followed by bias-free batch norm and a ReLU. The network predicts the noise and the module
returns the denoised image, f(y) = y − r(y); no layer has an additive constant, so f is
homogeneous of degree 1.

At width 64 the parameter counts of the public code are 366,080 / 1,825,024 / 7,659,264 /
30,993,152 for 1 / 2 / 3 / 4 blocks (receptive fields 18 / 44 / 92 / 188 pixels).
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_bench.architectures.layers import INITS, conv3x3, conv_bn_relu, initialize
from gahb_bench.contracts import Architecture
from gahb_bench.hookspecs import hookimpl


class UNet(nn.Module):
    """Bias-free UNet denoiser with ``blocks`` resolution levels.

    Parameters
    ----------
    channels : image channels (1 for grey).
    blocks : number of encoder (and decoder) levels; images must be divisible by 2**blocks.
    width : channels at level 0 (64 in the paper), doubled at each level.
    init : ``"public-code"`` (Kaiming-normal convolutions, batch-norm gains near 0, as the
        paper's code) or ``"unit-gain"``; see :mod:`gahb_bench.architectures.layers`.
    """

    def __init__(self, channels: int = 1, blocks: int = 3, width: int = 64, init: str = "public-code"):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"unet: blocks must be at least 1, got {blocks}")
        if width < 1:
            raise ValueError(f"unet: width must be at least 1, got {width}")
        self.blocks = blocks
        widths = [width * 2**level for level in range(blocks)]
        self.encoder = nn.ModuleList()
        for level, c in enumerate(widths):
            if level == 0:
                first = nn.Sequential(conv3x3(channels, c), nn.ReLU(inplace=True))
            else:
                first = conv_bn_relu(widths[level - 1], c)
            self.encoder.append(nn.Sequential(first, conv_bn_relu(c, c)))
        self.pool = nn.AvgPool2d(2)
        deepest = widths[-1]
        self.middle = nn.Sequential(conv_bn_relu(deepest, 2 * deepest), conv_bn_relu(2 * deepest, 2 * deepest))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(2 * c, c, kernel_size=2, stride=2, bias=False) for c in widths
        )
        self.decoder = nn.ModuleList()
        for level, c in enumerate(widths):
            if level == 0:
                self.decoder.append(nn.Sequential(conv_bn_relu(2 * c, c), conv3x3(c, channels)))
            else:
                self.decoder.append(nn.Sequential(conv_bn_relu(2 * c, c), conv_bn_relu(c, c)))
        initialize(self, init)

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """The predicted noise r(y)."""
        skips = []
        h = y
        for level in range(self.blocks):
            h = self.encoder[level](h)
            skips.append(h)
            h = self.pool(h)
        h = self.middle(h)
        for level in reversed(range(self.blocks)):
            h = self.up[level](h)
            h = self.decoder[level](torch.cat([h, skips[level]], dim=1))
        return h

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.residual(y)


#: Table 1: blocks → (receptive field in pixels, the image size it was used at).
TABLE_1 = {1: (18, 20), 2: (44, 40), 3: (92, 80), 4: (188, 160)}


def auto_blocks(image_size: int) -> int:
    """Table 1's choice by image size: 1 block up to 20 px, 2 up to 40, 3 up to 80, else 4."""
    for blocks, (_, size) in TABLE_1.items():
        if image_size <= size:
            return blocks
    return 4


def build_unet(channels: int, image_size: int, blocks: int | str = "auto", width: int = 64,
               init: str = "public-code") -> UNet:
    """Build the UNet; ``blocks="auto"`` follows Table 1 (see :func:`auto_blocks`).

    ``image_size`` must be divisible by 2**blocks; ``init`` is one of
    :data:`~gahb_bench.architectures.layers.INITS`.
    """
    if init not in INITS:
        raise ValueError(f"unet: init must be one of {', '.join(INITS)}, got {init!r}")
    if blocks == "auto":
        blocks = auto_blocks(image_size)
    if isinstance(blocks, bool) or not isinstance(blocks, int):
        raise ValueError(f"unet: blocks must be 'auto' or an integer, got {blocks!r}")
    width = int(width)
    if image_size % 2**blocks:
        raise ValueError(
            f"unet: image_size {image_size} is not divisible by 2**blocks = {2**blocks}; "
            f"use fewer blocks (--param blocks=...)"
        )
    return UNet(channels=channels, blocks=blocks, width=width, init=init)


@hookimpl
def gahb_register_architectures(register):
    register(
        Architecture(
            name="unet",
            build=build_unet,
            params={"blocks": "auto", "width": 64, "init": "public-code"},
            description="The paper's bias-free UNet (Table 1): blocks levels (auto: by image size), "
                        "width·2^level channels, noise residual; init as the public code.",
            biases={"locality": "multiscale; global where the field covers the image",
                    "receptive_field": "18/44/92/188 px for 1-4 blocks",
                    "translation_equivariance": "approximate (shifts by 2^blocks; zero padding)",
                    "homogeneity": "yes (bias-free)", "global_interactions": "no",
                    "multiscale": "yes (blocks levels, 2x pooling)"},
        )
    )
