"""The public code's initialization (the default) and the unit-gain alternative."""

import math

import numpy as np
import pytest
import torch

from gahb_bench.architectures.bfcnn import BFCNN, build_bfcnn
from gahb_bench.architectures.layers import PUBLIC_GAMMA_CLAMP, PUBLIC_GAMMA_SCALE, BiasFreeBatchNorm2d
from gahb_bench.architectures.unet import UNet, build_unet


def _gammas(model):
    return torch.cat([m.gamma.detach().flatten() for m in model.modules() if isinstance(m, BiasFreeBatchNorm2d)])


def _convs(model):
    return [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


@pytest.mark.parametrize("make", [lambda i: UNet(1, blocks=2, width=64, init=i),
                                  lambda i: BFCNN(1, depth=21, width=64, init=i)], ids=["unet", "bfcnn"])
def test_public_code_statistics(make):
    torch.manual_seed(0)
    model = make("public-code")
    gamma = _gammas(model)
    # γ = clamp(randn · 2/9/64, ±0.025): std 0.00347, never beyond the clamp, never 1.
    assert gamma.abs().max() <= PUBLIC_GAMMA_CLAMP
    assert gamma.std().item() == pytest.approx(PUBLIC_GAMMA_SCALE, rel=0.1)
    assert abs(gamma.mean().item()) < 3 * PUBLIC_GAMMA_SCALE / math.sqrt(len(gamma))
    # Kaiming normal, fan-in: std = sqrt(2 / fan_in), for every conv with enough weights to tell.
    for conv in _convs(model):
        w = conv.weight.detach()
        fan_in = w.shape[1] * w[0, 0].numel()
        if w.numel() >= 4096:
            assert w.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.05)


def test_unit_gain_statistics():
    torch.manual_seed(0)
    model = UNet(1, blocks=2, width=64, init="unit-gain")
    assert torch.all(_gammas(model) == 1.0)
    conv = _convs(model)[3]
    fan_in = conv.weight[0].numel()
    # PyTorch's default: Kaiming-uniform with a = √5, i.e. std = 1 / sqrt(3 · fan_in).
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.05)


def test_residual_at_initialization():
    # The public code starts from f ≈ Id (residual std ≈ 0.002 on [0, 1] images); unit gains do not.
    images = torch.as_tensor(np.random.default_rng(0).random((32, 1, 32, 32)), dtype=torch.float32)
    stds = {}
    for init in ("public-code", "unit-gain"):
        torch.manual_seed(0)
        model = build_unet(1, 32, init=init).train()
        with torch.no_grad():
            stds[init] = model.residual(images).std().item()
    assert stds["public-code"] < 0.01
    assert stds["unit-gain"] > 0.1


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="init must be one of"):
        build_unet(1, 16, init="xavier")
    with pytest.raises(ValueError, match="init must be one of"):
        build_bfcnn(1, 16, init="zeros")
