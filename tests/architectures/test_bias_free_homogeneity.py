"""Bias-free networks are homogeneous in eval mode: f(a·y) = a·f(y) for a > 0."""

import pytest
import torch

from gahb_bench.architectures.bfcnn import BFCNN
from gahb_bench.architectures.unet import UNet


def _trained_statistics(model: torch.nn.Module) -> torch.nn.Module:
    # A few training-mode passes move the running standard deviations away from 1, so the
    # check covers real batch-norm statistics, not the identity.
    model.train()
    with torch.no_grad():
        for k in range(3):
            model(torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(k)) * (k + 1))
    return model.eval()


# Unit gains: the public code's near-zero gains make the tiny test networks almost the identity,
# where homogeneity would hold trivially.
@pytest.mark.parametrize("make", [lambda: UNet(1, blocks=1, width=8, init="unit-gain"),
                                  lambda: UNet(1, blocks=2, width=8, init="unit-gain"),
                                  lambda: BFCNN(1, depth=6, width=8, init="unit-gain")], ids=["unet1", "unet2", "bfcnn"])
@pytest.mark.parametrize("a", [0.1, 3.7, 50.0])
def test_eval_mode_is_homogeneous(make, a):
    torch.manual_seed(0)
    model = _trained_statistics(make()).double()
    y = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fy, fay = model(y), model(a * y)
    torch.testing.assert_close(fay, a * fy, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(fy, y), "the network must not be the identity for the check to mean anything"


def test_f_equals_jacobian_times_input():
    """f(y) = ∇f(y)·y (Euler's identity for degree-1 homogeneous maps), via one JVP."""
    torch.manual_seed(0)
    model = _trained_statistics(UNet(1, blocks=1, width=8, init="unit-gain")).double()
    y = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fy, jvp = torch.func.jvp(model, (y,), (y,))
    torch.testing.assert_close(jvp, fy, rtol=1e-9, atol=1e-11)
