"""The GPU path's flags: off, training is the recipe's float32 loop exactly; on, each flag works
(on the CPU here; `pytest -m gpu` runs them on a card), is recorded, and changes the model."""

from pathlib import Path

import numpy as np
import pytest
import torch

import gahb_bench
from gahb_bench.acceleration import Acceleration
from gahb_bench.architectures.unet import UNet
from gahb_bench.contracts import Training
from gahb_bench.errors import GahbError, ModelError
from gahb_bench.runner import RunSpec
from gahb_bench.sweep import run
from gahb_bench import training
from gahb_bench.training import batch_indices, draw_sigmas, train_denoiser
from helpers import register_battery

IMAGES = np.random.default_rng(0).uniform(size=(5, 1, 8, 8)).astype(np.float32)
RECIPE = Training(steps=25, batch_size=4, halve_every=10, loss_weighting="inverse-variance")


def _model():
    torch.manual_seed(0)
    return UNet(1, blocks=1, width=4)


def _recipe_by_hand(model, images, recipe, seed):
    """The blind recipe written out step by step (SCIENCE.md §4), one CPU stream for everything."""
    g = torch.Generator().manual_seed(seed)
    data = torch.as_tensor(images)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.halve_every, gamma=0.5)
    model.train()
    losses = []
    for idx in batch_indices(len(data), recipe.steps, recipe.batch_size, g):
        x = data[idx]
        sigma = draw_sigmas(len(idx), recipe, g).view(-1, 1, 1, 1)
        noisy = x + torch.randn(x.shape, generator=g) * sigma
        opt.zero_grad()
        errors = ((model(noisy) - x) ** 2).flatten(1).sum(1)
        errors = errors / sigma.view(-1).clamp(min=recipe.weight_floor, max=recipe.weight_cap) ** recipe.weight_power
        loss = errors.sum() / len(idx)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


def test_flags_off_train_exactly_the_float32_recipe():
    expected = _model()
    losses = _recipe_by_hand(expected, IMAGES, RECIPE, seed=3)
    for acceleration in (Acceleration(), Acceleration("float32", False, False)):
        got = _model()
        log = train_denoiser(got, IMAGES, RECIPE, 3, torch.device("cpu"), acceleration=acceleration)
        for a, b in zip(expected.parameters(), got.parameters()):
            assert torch.equal(a, b)
        assert log.final_loss == pytest.approx(np.mean(losses[-1:]), rel=0, abs=0)
    assert Acceleration().key() == {} and Acceleration().wrap(expected) is expected


def test_a_diverging_loss_names_its_first_bad_step_though_read_back_in_blocks(monkeypatch):
    monkeypatch.setattr(training, "CHECK_EVERY", 10)
    model, calls = _model(), []

    def poison(module, inputs, output):  # the 18th forward pass (step 17) returns NaN
        calls.append(None)
        return output * np.nan if len(calls) == 18 else output

    model.register_forward_hook(poison)
    with pytest.raises(ModelError, match=r"training diverged at step 17: loss is nan"):
        train_denoiser(model, IMAGES, Training(steps=40, batch_size=4), 3, torch.device("cpu"))
    assert len(calls) == 20  # found at the check after step 19, not at the end of training


def test_an_unknown_precision_is_refused():
    with pytest.raises(GahbError, match="unknown precision 'fp16'; use one of: float32, tf32, bf16"):
        Acceleration(precision="fp16")


def test_bf16_autocast_returns_float32_close_to_the_exact_forward_but_not_equal():
    model = _model().eval()
    y = torch.as_tensor(IMAGES) + 0.1
    with torch.no_grad():
        exact = model(y)
        approx = Acceleration(precision="bf16").wrap(model)(y)
    assert approx.dtype == torch.float32 and approx.is_contiguous()
    assert not torch.equal(exact, approx)
    # bfloat16 keeps 8 bits of mantissa: relative error a few 2^-8 through a few layers.
    assert float((approx - exact).norm() / exact.norm()) < 3e-2


def test_precision_is_for_training_only_evaluation_stays_strict_float32():
    model = _model()
    assert Acceleration(precision="bf16").wrap(model, training=False) is model
    assert Acceleration(precision="tf32").wrap(model, training=False) is model
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with Acceleration(precision="tf32").float_mode(training=True):
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    for flags in (Acceleration(), Acceleration(precision="tf32")):
        with flags.float_mode(training=False):  # PyTorch's own default lets cuDNN use TF32
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == saved


def test_channels_last_computes_the_same_function():
    model = _model().eval()
    y = torch.as_tensor(IMAGES)
    with torch.no_grad():
        exact = model(y)
        nhwc = Acceleration(channels_last=True).wrap(model)(y)
    torch.testing.assert_close(nhwc, exact, rtol=1e-5, atol=1e-6)
    assert next(p for p in model.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("acceleration", [Acceleration(precision="bf16"), Acceleration(channels_last=True),
                                          pytest.param(Acceleration(compile=True), marks=pytest.mark.slow)])
def test_each_flag_trains_a_model_that_denoises(acceleration):
    model = _model()
    before = _mse(model)
    train_denoiser(model, IMAGES, Training(steps=200, batch_size=4), 1, torch.device("cpu"), acceleration=acceleration)
    assert _mse(model) < 0.7 * before


def _mse(model, sigma=0.5):
    x = torch.as_tensor(IMAGES)
    noisy = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        return float(((model.eval()(noisy) - x) ** 2).mean())


def test_flags_enter_the_checkpoint_key_and_the_store_identity(tmp_path):
    exp = gahb_bench.Experiment(name="gen", image_classes=("faces",), n_train=(2,), subsets=(0,),
                                metrics=("denoising_curves",),
                                metric_settings={"denoising_curves": {"n_sigma": 3, "n_test": 4, "min_evaluations": 4}})
    preset = gahb_bench.Preset(name="tiny", image_size=8, training=Training(steps=4, batch_size=4), experiments=(exp,))
    undo = register_battery(gahb_bench.Battery(name="accel", version="1", presets={"tiny": preset}))
    try:
        common = ("tiny-cnn", {"depth": 3, "width": 4}, "accel", "tiny")
        plain = RunSpec(*common, str(tmp_path / "plain.zarr"), str(tmp_path / "ckpt"), quiet=True)
        bf16 = RunSpec(*common, str(tmp_path / "bf16.zarr"), str(tmp_path / "ckpt"), quiet=True,
                       acceleration=Acceleration(precision="bf16"))
        assert run(plain).trained == 1
        assert run(bf16).trained == 1  # not the float32 model's checkpoint
        assert len(list(Path(tmp_path / "ckpt").rglob("*.pt"))) == 2
        with pytest.raises(GahbError, match="acceleration"):  # a store never mixes the two
            run(RunSpec(*common, plain.store, plain.checkpoints, quiet=True, acceleration=Acceleration(precision="bf16")))
        assert run(plain).already_done == 1
    finally:
        undo()
