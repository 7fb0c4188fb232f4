"""The zoo's members: found through the entry point, the contract, parameter counts as
documented, homogeneity where bias-free (and its failure where not), the local CNN's receptive
field."""

import math

import pytest
import torch

from gahb_bench.architectures.layers import count_parameters
from gahb_bench.registry import get_registry
from gahb_bench.runner import probe_model
from gahb_zoo import ARCHITECTURES

NAMES = [a.name for a in ARCHITECTURES]
BIAS_FREE = ["local-cnn", "mlp", "vit", "attention-unet"]

#: The counts the docstrings and the README state, at the cpu preset's 16 × 16 pixels
#: (the UNet there: 366,080).
PARAMETERS_16 = {"dncnn": 704_065, "local-cnn": 297_472, "mlp": 524_288, "vit": 528_912,
                 "attention-unet": 431_616}
UNET_16 = 366_080


def _build(name, image_size=16, **params):
    record = get_registry().architecture(name)
    return record.build(1, image_size, **{**record.params, **params})


def test_members_are_found_through_the_entry_point():
    registry = get_registry()
    for name in NAMES:
        entry = registry.entry("architectures", name)
        assert entry.plugin.distribution == "gahb-zoo" and entry.plugin.name == "zoo"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("image_size", [8, 10, 16])
def test_contract_probe(name, image_size):
    probe_model(_build(name, image_size), name, 1, image_size)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_as_documented_and_within_twice_the_unet(name):
    n = count_parameters(_build(name, 16))
    assert n == PARAMETERS_16[name]
    assert UNET_16 / 2 <= n <= 2 * UNET_16


def _randomized(model: torch.nn.Module, shape: tuple = (8, 1, 16, 16)) -> torch.nn.Module:
    """Every parameter drawn at random (zero-initialized heads and biases included), then a few
    training-mode passes on inputs of ``shape`` so batch norms hold real running statistics;
    float64, eval mode."""
    gen = torch.Generator().manual_seed(0)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            std = 1 / math.sqrt(p[0].numel()) if p.dim() >= 2 else 0.3
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
        model.train()
        for k in range(3):
            model(torch.rand(shape, generator=gen, dtype=torch.float64) * (k + 1))
    return model.eval()


def _homogeneity_error(model, a):
    y = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fy, fay = model(y), model(a * y)
    assert not torch.allclose(fy, y, atol=1e-6), "the network must not be the identity for the check to mean anything"
    return float((fay - a * fy).abs().max() / (a * fy).abs().max())


@pytest.mark.parametrize("name", BIAS_FREE)
@pytest.mark.parametrize("a", [0.05, 3.7])
def test_bias_free_members_are_homogeneous(name, a):
    assert _homogeneity_error(_randomized(_build(name)), a) < 1e-10


@pytest.mark.parametrize("name,params", [("dncnn", {}), ("vit", {"bias": True}), ("mlp", {"bias": True})])
def test_members_with_biases_are_not_homogeneous(name, params):
    assert _homogeneity_error(_randomized(_build(name, **params)), 3.7) > 1e-3


def test_bias_free_attention_is_homogeneous_down_to_tiny_scales():
    """The RMS normalizer's ε is relative to the sample's own scale: an absolute ε would break
    homogeneity where the tokens are small."""
    from gahb_zoo.attention import SelfAttention

    attention = _randomized(SelfAttention(16, 4, bias=False, grid=3), (2, 9, 16))
    x = torch.randn(2, 9, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for a in (1e-6, 1e3):
            torch.testing.assert_close(attention(a * x), a * attention(x), rtol=1e-10, atol=0)


def test_relative_positions_depend_on_offsets_only():
    from gahb_zoo.attention import SelfAttention

    attention = _randomized(SelfAttention(8, 2, bias=False, grid=4), (2, 16, 8))
    P = attention.position[:, attention.offset]  # (heads, T, T), tokens in raster order on the 4 × 4 grid
    token = lambda r, c: 4 * r + c  # noqa: E731
    assert torch.equal(P[:, token(0, 0), token(1, 2)], P[:, token(2, 1), token(3, 3)])
    assert not torch.equal(P[:, token(0, 0), token(1, 2)], P[:, token(0, 0), token(2, 1)])


def test_the_attention_unet_sees_beyond_the_unet_receptive_field():
    """At 48 px with 1 block the UNet's receptive field is 18 px: output pixel (0, 0) does not
    depend on input pixel (47, 47); with attention at the coarsest level it does."""
    def corner_gradient(model):
        y = torch.rand(1, 1, 48, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(5),
                       requires_grad=True)
        model(y)[0, 0, 0, 0].backward()
        return float(y.grad[0, 0, 47, 47].abs())

    from gahb_bench.architectures.unet import build_unet

    shape = (4, 1, 48, 48)
    assert corner_gradient(_randomized(build_unet(1, 48, blocks=1, width=8), shape)) == 0.0
    assert corner_gradient(_randomized(_build("attention-unet", 48, blocks=1, width=8), shape)) > 1e-8


def test_the_dncnn_is_the_bfcnn_with_additive_constants():
    """Same convolutions (shapes, order); the differences are the biases and batch-norm shifts."""
    from gahb_bench.architectures.bfcnn import build_bfcnn

    dncnn, bfcnn = _build("dncnn"), build_bfcnn(1, 16)
    shapes = lambda m: [tuple(c.weight.shape) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    assert shapes(dncnn) == shapes(bfcnn)
    extra = count_parameters(dncnn) - count_parameters(bfcnn)
    assert extra == 19 * 64 + 64 + 1  # shifts of the 19 batch norms, biases of the first and last convolutions


def test_local_cnn_receptive_field_is_exact():
    """Row i of the Jacobian is zero outside the 9 × 9 window around pixel i and not on its border."""
    model = _randomized(_build("local-cnn"))
    y = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    row = torch.autograd.functional.jacobian(lambda x: model(x)[0, 0, 8, 8], y)[0, 0].abs()
    support = (row > 0).nonzero()
    assert support[:, 0].min() == 4 and support[:, 0].max() == 12
    assert support[:, 1].min() == 4 and support[:, 1].max() == 12


def test_mlp_refuses_another_image_size():
    with pytest.raises(ValueError, match="built for images of shape"):
        _build("mlp", 8)(torch.zeros(1, 1, 16, 16))


@pytest.mark.parametrize("name,params,match", [
    ("local-cnn", {"receptive_field": 8}, "odd"),
    ("vit", {"patch": 3}, "divisible"),
    ("dncnn", {"init": "xavier"}, "init must be one of"),
    ("attention-unet", {"heads": 5}, "divisible"),
])
def test_bad_parameters_are_clear_errors(name, params, match):
    with pytest.raises(ValueError, match=match):
        _build(name, **params)


@pytest.fixture()
def homogeneity_battery():
    """A battery ``zoo-homogeneity``: the gaussian class at 8 px, 30 training steps, the GAHB
    metric at one σ (exact Jacobians of 2 images)."""
    import types

    import gahb_bench
    from gahb_bench.registry import register_extra, reset_registry

    exp = gahb_bench.Experiment(name="geometry", image_classes=("gaussian",), n_train=(64,), subsets=(0,),
                                metrics=("gahb",), metric_settings={"gahb": {"sigmas": (0.2,), "n_images": 2,
                                                                              "n_eigen": 4, "n_show": 2}})
    preset = gahb_bench.Preset(name="tiny", image_size=8, experiments=(exp,),
                               training=gahb_bench.Training(steps=30, batch_size=16))
    battery = gahb_bench.Battery(name="zoo-homogeneity", version="1", presets={"tiny": preset})

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(battery)

    reset_registry()
    undo = register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name=battery.name)
    yield battery.name
    undo()


@pytest.mark.parametrize("name,params,biased", [("dncnn", {"depth": 3, "width": 8}, True),
                                                ("local-cnn", {"receptive_field": 5, "width": 8}, False)])
def test_the_gahb_summary_reads_the_biased_twin_as_not_homogeneous(homogeneity_battery, tmp_path, name, params,
                                                                   biased):
    """Through a real run: the GAHB metric's homogeneity residual ‖f(y) − ∇f(y) y‖/‖f(y)‖, as the
    summary and the scorecard report it, is far from 0 for the trained DnCNN with biases and
    float-precision 0 for a bias-free member."""
    from gahb_bench import scorecard
    from gahb_bench.runner import RunSpec
    from gahb_bench.sweep import run

    spec = RunSpec(name, params, homogeneity_battery, "tiny", str(tmp_path / "s.zarr"), str(tmp_path / "ckpt"),
                   quiet=True)
    assert not run(spec).failed
    residual = scorecard.compute(scorecard.read(tmp_path / "s.zarr"))["homogeneity_residual"].value
    assert (residual > 1e-3) if biased else (residual < 1e-4)
