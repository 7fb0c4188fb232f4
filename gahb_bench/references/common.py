"""What the closed-form references share: the check of a training set, and the softmax-weighted
average accumulated chunk by chunk of the training set.

Every reference built from training images is a posterior mean under a uniform prior on some
finite set (images, or patches), Σ_i softmax_i(ℓ_i) v_i with logits ℓ_i = −‖y − x_i‖²/2σ² (up
to a term that cancels). :class:`SoftmaxAverage` accumulates it over chunks of i with a running
maximum m (log-sum-exp): when a chunk raises the maximum from m to m', what was accumulated is
rescaled by e^(m − m'). It is exact at any σ (no underflow to 0/0 at small σ) and its memory is
one chunk of logits.
"""

from __future__ import annotations

import numpy as np
import torch


def training_batch(images, dtype=np.float64) -> np.ndarray:
    """``images`` as an array of ``dtype``, refused unless a non-empty batch (N, C, H, W)."""
    x = np.asarray(images, dtype)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"training images must be a non-empty batch (N, C, H, W), got shape {x.shape}")
    return x


class SoftmaxAverage:
    """Σ_i softmax_i(ℓ_i) v_i, the items i given chunk by chunk.

    ``lead`` is the shape of the queries (e.g. (B,), or (H·W, B) for one product per location),
    ``width`` the length of each value v_i. :meth:`add` takes a chunk's logits (*lead, n) and
    values (n, width), or (*lead[:-1], n, width) for a batched product; :meth:`mean` gives the
    average (*lead, width).
    """

    def __init__(self, lead: tuple[int, ...], width: int, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu"):
        self.max = torch.full((*lead, 1), -torch.inf, dtype=dtype, device=device)
        self.weight_sum = torch.zeros((*lead, 1), dtype=dtype, device=device)
        self.acc = torch.zeros((*lead, width), dtype=dtype, device=device)

    def add(self, logits: torch.Tensor, values: torch.Tensor) -> None:
        """Fold in one chunk; ``logits`` is overwritten (it becomes the weights)."""
        new_max = torch.maximum(self.max, logits.amax(dim=-1, keepdim=True))
        rescale = torch.exp(self.max - new_max)
        # Clamped at e^-80 ≈ 2e-35 (relative to the largest weight, 1): far-away items would
        # otherwise give subnormal weights, which slow the next matrix product tenfold on CPUs,
        # for a change of the result below n · 2e-35 relative.
        weights = logits.sub_(new_max).clamp_(min=-80.0).exp_()
        self.weight_sum = self.weight_sum * rescale + weights.sum(dim=-1, keepdim=True)
        product = torch.addmm if values.dim() == 2 and weights.dim() == 2 else torch.baddbmm
        self.acc = product(self.acc * rescale, weights, values)
        self.max = new_max

    def mean(self) -> torch.Tensor:
        return self.acc / self.weight_sum
