"""Self-attention over tokens, with or without additive constants.

For tokens x ∈ ℝ^{T×d} and each head h (d_h = d / heads)::

    A_h = softmax( q_h k_hᵀ / √d_h + P_h ),   q_h = n(x) W_q,h,   k_h = n(x) W_k,h
    out = concat_h( A_h v_h ) W_o

``bias=False`` (homogeneous): n is RMS normalization per token (see :class:`RMSNorm`), so the
attention weights A depend on x only through its direction (degree 0 in x), and the values
v = x W_v are linear in x: out(a·x) = a·out(x) for a > 0. No linear map has a bias.
``bias=True`` (the standard pre-norm block): n is LayerNorm with its shift, the values are
v = n(x) W_v + b_v, and every projection has a bias.

P_h is an optional learned relative-position term (Shaw et al. 2018; Swin, Liu et al. 2021) for
tokens on a g × g grid: P_h[i, j] = B_h[r_i − r_j, c_i − c_j], one learned value per head and
offset, (2g − 1)² per head, zero at initialization. It only moves the weights (degree 0), so it
keeps homogeneity, unlike a positional embedding added to the tokens, and it depends on
offsets only, so attention is equivariant to shifts of the token grid (borders aside).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RMSNorm(nn.Module):
    """Per-token RMS normalization without gain or shift, exactly scale-invariant::

        n(x)_t = x_t / √(mean_j x_{t,j}² + ε · mean_{t,j} x_{t,j}² + δ)

    The regularizer ε is relative to the mean square of the whole sample (all its tokens), so
    n(a·x) = n(x) for every a > 0, where an absolute ε would break homogeneity at small scales;
    δ = 1e-30 only keeps an all-zero sample finite.
    """

    def __init__(self, eps: float = 1e-4):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        token = x.pow(2).mean(dim=-1, keepdim=True)
        sample = token.mean(dim=-2, keepdim=True)
        return x * torch.rsqrt(token + self.eps * sample + 1e-30)


class SelfAttention(nn.Module):
    """Multi-head self-attention on (B, T, d) tokens; see the module docstring for the formula.

    Parameters
    ----------
    dim : token width d (divisible by ``heads``).
    heads : number of heads.
    bias : additive constants (LayerNorm shift, projection biases) or none (homogeneous).
    grid : when given, the tokens form a ``grid × grid`` raster and a learned relative-position
        term P is added to the logits.
    """

    def __init__(self, dim: int, heads: int, bias: bool, grid: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.bias = heads, bias
        self.norm = nn.LayerNorm(dim) if bias else RMSNorm()
        self.qk = nn.Linear(dim, 2 * dim, bias=bias)
        self.v = nn.Linear(dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)
        # zero output projection: the block starts as the identity of the residual stream
        nn.init.zeros_(self.out.weight)
        self.position = None
        if grid:
            self.position = nn.Parameter(torch.zeros(heads, (2 * grid - 1) ** 2))
            rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
            rows, cols = rows.flatten(), cols.flatten()
            offset = (rows[:, None] - rows[None, :] + grid - 1) * (2 * grid - 1) + (cols[:, None] - cols[None, :] + grid - 1)
            self.register_buffer("offset", offset, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        dh = d // self.heads
        nx = self.norm(x)
        q, k = self.qk(nx).view(b, t, 2, self.heads, dh).permute(2, 0, 3, 1, 4)
        v = self.v(nx if self.bias else x).view(b, t, self.heads, dh).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if self.position is not None:
            logits = logits + self.position[:, self.offset]
        y = logits.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, t, d))
