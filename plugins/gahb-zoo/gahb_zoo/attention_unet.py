"""The paper's bias-free UNet with global self-attention at its coarsest level.

The built-in :class:`gahb_bench.architectures.unet.UNet` (its ``blocks``, ``width`` and ``init``),
with one multi-head self-attention block appended to the middle block, on the tokens of the
coarsest feature map (one token per pixel of the (H/2^blocks)² map, 2·width·2^(blocks−1)
channels), residual: h ← h + Attention(h). The attention is bias-free (see
:mod:`gahb_zoo.attention`: weights from RMS-normalized tokens, values linear, no biases, no
positional term: the convolutions' zero padding already tells a token where it is), so the
network stays homogeneous, f(a·y) = a·f(y). Its output projection starts at zero: at
initialization the network is the UNet.

Inductive biases: the UNet's (multiscale, translation equivariant convolutions, homogeneous)
plus global interactions at the coarsest scale, as in the UNets of diffusion models (Ho et al.
2020). At 16 × 16 pixels (1 block, width 64): 431,616 parameters (the UNet: 366,080).
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_bench.architectures.unet import UNet, build_unet
from gahb_zoo.attention import SelfAttention


class SpatialAttention(nn.Module):
    """h ← h + Attention(h) on a (B, C, H, W) map, its H·W pixels as tokens."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.attention = SelfAttention(channels, heads, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, height, width = h.shape
        tokens = h.flatten(2).transpose(1, 2)
        return h + self.attention(tokens).transpose(1, 2).reshape(b, c, height, width)


def build_attention_unet(channels: int, image_size: int, blocks: int | str = "auto", width: int = 64,
                         heads: int = 4, init: str = "public-code") -> UNet:
    """Build the UNet (``blocks="auto"`` as the built-in) and append attention to its middle block."""
    model = build_unet(channels, image_size, blocks=blocks, width=width, init=init)
    middle_channels = 2 * int(width) * 2 ** (model.blocks - 1)
    model.middle = nn.Sequential(*model.middle, SpatialAttention(middle_channels, int(heads)))
    return model
