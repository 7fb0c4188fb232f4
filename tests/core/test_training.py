"""Blind training: batches tile the subset, the σ law, determinism, the checkpoint cache."""

import numpy as np
import pytest
import torch

from gahb_bench.architectures.unet import UNet
from gahb_bench.contracts import Training
from gahb_bench.training import (batch_indices, checkpoint_fields, checkpoint_key, draw_sigmas,
                                 load_checkpoint, save_checkpoint, train_denoiser)


def test_batches_deal_each_image_equally_often():
    counts = torch.zeros(5, dtype=torch.long)
    for idx in batch_indices(5, steps=20, batch_size=8, generator=torch.Generator().manual_seed(0)):
        assert len(idx) == 8
        counts += torch.bincount(idx, minlength=5)
    # 160 draws dealt from whole permutations of 5: every image exactly 32 times.
    assert counts.tolist() == [32] * 5


def test_sigma_laws():
    g = torch.Generator().manual_seed(0)
    u2 = draw_sigmas(200_000, Training(steps=1, batch_size=1, sigma_law="u2"), g)
    uni = draw_sigmas(200_000, Training(steps=1, batch_size=1, sigma_law="uniform", sigma_max=0.5), g)
    assert float(u2.mean()) == pytest.approx(1 / 3, abs=3e-3)  # E[u²] = 1/3
    assert float((u2 < 0.25).float().mean()) == pytest.approx(0.5, abs=3e-3)  # P(u² < 1/4) = 1/2
    assert float(uni.mean()) == pytest.approx(0.25, abs=3e-3) and float(uni.max()) <= 0.5
    with pytest.raises(ValueError, match="sigma_law"):
        Training(steps=1, batch_size=1, sigma_law="log")


def _train(seed, steps=30, **recipe):
    torch.manual_seed(0)
    model = UNet(1, blocks=1, width=4)
    images = np.random.default_rng(0).uniform(size=(3, 1, 8, 8)).astype(np.float32)
    log = train_denoiser(model, images, Training(steps=steps, batch_size=4, **{"halve_every": 10, **recipe}),
                         seed, torch.device("cpu"))
    return model, log


def _mse_at(model, sigma=0.5):
    images = torch.as_tensor(np.random.default_rng(0).uniform(size=(3, 1, 8, 8)), dtype=torch.float32)
    noisy = images + sigma * torch.randn(images.shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        return float(((model.eval()(noisy) - images) ** 2).mean())


def test_training_lowers_the_error():
    # The public code's init starts near the identity (MSE ≈ σ² = 0.25 at σ = 0.5); 300 steps on
    # three images must at least halve the error on them (measured: 0.25 → 0.11).
    before, _ = _train(seed=1, steps=1)
    after, log = _train(seed=1, steps=300, halve_every=None)
    assert _mse_at(before) == pytest.approx(0.25, rel=0.2)
    assert _mse_at(after) < 0.5 * _mse_at(before)
    assert len(log.loss_profile) == 10 and np.isfinite(log.loss_change)


def test_inverse_variance_weighting_divides_each_error_by_sigma_squared():
    # One step of size 0 (lr = 0) leaves the model as it is: the recorded loss is the weighted
    # loss of the initial network on the first batch, which we recompute by hand.
    images = np.random.default_rng(0).uniform(size=(4, 1, 8, 8)).astype(np.float32)
    recipe = Training(steps=1, batch_size=4, lr=0.0, loss_weighting="inverse-variance", weight_floor=0.05)
    torch.manual_seed(0)
    model = UNet(1, blocks=1, width=4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    log = train_denoiser(model, images, recipe, 5, torch.device("cpu"))
    model.load_state_dict(state)
    model.train()
    g = torch.Generator().manual_seed(5)
    idx = next(batch_indices(4, 1, 4, g))
    sigma = draw_sigmas(4, recipe, g).view(-1, 1, 1, 1)
    x = torch.as_tensor(images)[idx]
    noisy = x + torch.randn(x.shape, generator=g) * sigma
    with torch.no_grad():
        errors = ((model(noisy) - x) ** 2).flatten(1).sum(1) / sigma.view(-1).clamp(min=0.05) ** 2
    assert log.final_loss == pytest.approx(float(errors.sum() / 4), rel=1e-5)
    with pytest.raises(ValueError, match="loss_weighting"):
        Training(steps=1, batch_size=1, loss_weighting="snr")


def test_training_reduces_loss_and_is_deterministic():
    a, log_a = _train(seed=1)
    b, _ = _train(seed=1)
    c, _ = _train(seed=2)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    assert np.isfinite(log_a.final_loss) and log_a.steps == 30 and not a.training


def test_checkpoint_round_trip_and_key(tmp_path):
    model, log = _train(seed=1)
    fields = checkpoint_fields("unet", "0.1", {"width": 4}, "photographs", {}, 8, 3, 0, 0,
                               Training(steps=30, batch_size=4))
    path = tmp_path / f"{checkpoint_key(fields)}.pt"
    save_checkpoint(path, model, fields, log)
    fresh = UNet(1, blocks=1, width=4)
    assert load_checkpoint(path, fresh, fields).final_loss == log.final_loss
    for pa, pb in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(pa, pb)
    other = dict(fields, n_train=4)
    assert checkpoint_key(other) != checkpoint_key(fields)
    assert load_checkpoint(path, UNet(1, blocks=1, width=4), other) is None  # a key clash is not trusted
    wider = UNet(1, blocks=1, width=8)  # the same key fields, a model the weights fit only in part
    initial = {k: v.clone() for k, v in wider.state_dict().items()}
    assert load_checkpoint(path, wider, fields) is None
    assert all(torch.equal(initial[k], v) for k, v in wider.state_dict().items())  # left as it was
    path.write_bytes(b"garbage")
    assert load_checkpoint(path, UNet(1, blocks=1, width=4), fields) is None
