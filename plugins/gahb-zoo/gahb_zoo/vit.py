"""A small vision-transformer denoiser: patch tokens and global self-attention.

The image is cut into non-overlapping p × p patches, T = (H/p)(W/p) tokens; each is embedded
linearly, x₀ = E·patch; ``depth`` blocks update the tokens::

    x ← x + Attention(x)            (every token attends to every token)
    x ← x + W₂ ReLU(W₁ n(x))        (per token, hidden width ``mlp_ratio``·d)

and a linear head maps each token back to its patch of predicted noise, r(y); f(y) = y − r(y).
The head starts at zero (f = Id at initialization).

Position: a learned relative-position term on the attention logits, (2g − 1)² values per head
and block for a g × g token grid (see :mod:`gahb_zoo.attention`), not an embedding added to the
tokens.

``bias=False`` (the default) is the honest bias-free variant: no linear map has a bias, the
attention weights are computed from RMS-normalized tokens (degree 0 in the input) and the values
from the tokens themselves, the MLP branch has no normalization (n = Id) and ReLU, and P only
shifts logits; so f(a·y) = a·f(y) for a > 0 (the normalizer's ε is relative to the sample's own
scale). ``bias=True`` adds back what a pre-norm ViT block has: LayerNorm (with its shift) before
attention and MLP, and biased maps (the activation stays ReLU, where ViTs usually take GELU, so
that the two variants differ by the additive constants only).

Inductive biases: global (every output pixel can depend on every input pixel through one
attention layer), equivariant only to shifts by whole patches (relative positions; borders
aside), no multiscale structure beyond the patch; weight sharing across tokens. Parameters at
16 × 16 pixels, patch 2, dim 128, depth 4, 4 heads, mlp_ratio 2: 528,912 (3,600 of them the
relative-position terms; 526,096 at 8 × 8).
"""

from __future__ import annotations

import torch
from torch import nn

from gahb_zoo.attention import SelfAttention


class ViTDenoiser(nn.Module):
    """Patch-token transformer denoiser for ``channels × image_size²`` images."""

    def __init__(self, channels: int, image_size: int, patch: int = 2, dim: int = 128, depth: int = 4,
                 heads: int = 4, mlp_ratio: int = 2, bias: bool = False):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"vit: image_size {image_size} is not divisible by patch {patch}")
        if depth < 1:
            raise ValueError(f"vit: depth must be at least 1, got {depth}")
        self.channels, self.image_size, self.patch = channels, image_size, patch
        grid = image_size // patch
        patch_dim = channels * patch * patch
        self.embed = nn.Linear(patch_dim, dim, bias=bias)
        self.attention = nn.ModuleList(SelfAttention(dim, heads, bias, grid) for _ in range(depth))
        self.mlp_norm = nn.ModuleList(nn.LayerNorm(dim) if bias else nn.Identity() for _ in range(depth))
        self.mlp = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, mlp_ratio * dim, bias=bias), nn.ReLU(inplace=True),
                          nn.Linear(mlp_ratio * dim, dim, bias=bias))
            for _ in range(depth))
        self.head = nn.Linear(dim, patch_dim, bias=bias)
        nn.init.zeros_(self.head.weight)

    def _tokens(self, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = y.shape
        p = self.patch
        return y.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)

    def _image(self, tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        b, c, h, w = like.shape
        p = self.patch
        return tokens.view(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if tuple(y.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"vit: built for {self.channels}×{self.image_size}×{self.image_size} images, "
                             f"got {tuple(y.shape[1:])}")
        x = self.embed(self._tokens(y))
        for attention, norm, mlp in zip(self.attention, self.mlp_norm, self.mlp):
            x = x + attention(x)
            x = x + mlp(norm(x))
        return y - self._image(self.head(x), y)


def build_vit(channels: int, image_size: int, patch: int = 2, dim: int = 128, depth: int = 4, heads: int = 4,
              mlp_ratio: int = 2, bias: bool = False) -> ViTDenoiser:
    """Build the ViT denoiser; ``image_size`` must be divisible by ``patch``."""
    if not isinstance(bias, bool):
        raise ValueError(f"vit: bias must be true or false, got {bias!r}")
    return ViTDenoiser(channels, image_size, patch=int(patch), dim=int(dim), depth=int(depth), heads=int(heads),
                       mlp_ratio=int(mlp_ratio), bias=bias)
