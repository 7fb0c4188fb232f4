"""Optional speed-ups of the GPU path: reduced-precision training, channels-last memory and
``torch.compile``.

Each is a flag of ``gahb run`` (``--precision tf32|bf16``, ``--channels-last``, ``--compile``),
off by default. With every flag off nothing changes: strict float32 (TF32 off on CUDA, for
convolutions as for matrix products), the same operations in the same order, the same
checkpoint keys and store identity, bit-identical scores on the CPU. A flag that is on enters
the checkpoint key and the store's identity: a model trained in bf16 is another model, and a
store never mixes the two.

What the flags touch:

- ``--precision`` the training step only: ``tf32`` lets CUDA convolutions and matrix products
  round their inputs to TF32 (10-bit mantissa; no effect on a CPU); ``bf16`` runs the forward
  pass and loss under ``torch.autocast`` to bfloat16 (8-bit mantissa; parameters, gradients and
  Adam's state stay float32, as in mixed-precision training). Evaluation is always strict
  float32: the denoising curves at small σ, the S1–S2 model variance and the optimality gap
  measure differences that bf16 rounding (a relative error of about 1e-2) would drown, and
  Jacobian spectra would measure the rounding, not the denoiser.
- ``--channels-last`` and ``--compile``, training and the forward passes of evaluation
  (``ctx.denoise`` of every metric): the same function computed faster (channels-last changes
  the order of float sums only). Channels-last converts the model's weights in place, so the
  Jacobians of a model trained with it are computed from NHWC weights too.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterator

import torch

from gahb_bench.errors import GahbError

PRECISIONS = ("float32", "tf32", "bf16")


@dataclass(frozen=True)
class Acceleration:
    """Which speed-ups a run uses (see the module docstring)."""

    #: Training precision: ``float32`` (strict, the default), ``tf32`` or ``bf16``.
    precision: str = "float32"
    #: Keep images and convolution weights in channels-last (NHWC) layout.
    channels_last: bool = False
    #: Compile the forward pass with ``torch.compile`` (first steps slower: it compiles).
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise GahbError(f"unknown precision {self.precision!r}; use one of: {', '.join(PRECISIONS)}")

    @property
    def is_default(self) -> bool:
        return self == Acceleration()

    def key(self) -> dict:
        """The flags as recorded in checkpoint keys and store identities: {} when all are off,
        so that runs without flags keep the keys they always had."""
        return {} if self.is_default else asdict(self)

    def wrap(self, model: torch.nn.Module, training: bool = True) -> torch.nn.Module:
        """``model`` itself when no flag applies; otherwise a module that applies it with the
        flags (sharing its parameters: training the wrapper trains ``model``). With
        ``training`` False (evaluation), ``precision`` does not apply."""
        bf16 = training and self.precision == "bf16"
        if not (bf16 or self.channels_last or self.compile):
            return model
        wrapped: torch.nn.Module = Accelerated(model, bf16, self.channels_last)
        if self.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    @contextlib.contextmanager
    def float_mode(self, training: bool = True) -> Iterator[None]:
        """Within it, CUDA convolutions and matrix products use TF32 only when training with
        ``precision="tf32"``, strict float32 otherwise (PyTorch's own default lets cuDNN use
        TF32); the previous settings are restored on exit."""
        tf32 = training and self.precision == "tf32"
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class Accelerated(torch.nn.Module):
    """``model`` under bf16 autocast and/or channels-last layout; returns contiguous float32."""

    def __init__(self, model: torch.nn.Module, bf16: bool, channels_last: bool) -> None:
        super().__init__()
        self.model, self.bf16, self.channels_last = model, bf16, channels_last
        if channels_last:
            model.to(memory_format=torch.channels_last)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(y)
        return out.float().contiguous()
