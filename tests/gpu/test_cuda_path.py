"""The CUDA path (run with `pytest -m gpu` on a machine with a GPU)."""

import numpy as np
import pytest
import torch
import xarray as xr

from gahb_bench.store import read_identity
from helpers import gahb

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_smoke_on_cuda_matches_cpu(tmp_path):
    args = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--quiet"]
    cpu = gahb(*args, "--device", "cpu", "--out", str(tmp_path / "cpu"))
    gpu = gahb(*args, "--device", "cuda", "--out", str(tmp_path / "gpu"))
    assert cpu.returncode == 0 and gpu.returncode == 0, gpu.stderr
    a, b = (xr.open_zarr(tmp_path / d / "tiny-cnn-standard-smoke.zarr", group="generalization").load()
            for d in ("cpu", "gpu"))
    assert (b.status == 1).all()
    # Same seeds, but the training noise is drawn on the device (another stream than the CPU's)
    # and kernels differ: two trainings of the same recipe, which agree to a tolerance.
    np.testing.assert_allclose(b.psnr.values, a.psnr.values, atol=0.5)


def test_every_flag_on_cuda_trains_and_scores_close_to_float32(tmp_path):
    args = ["run", "--arch", "tiny-cnn", "--preset", "smoke", "--experiment", "generalization", "--quiet",
            "--device", "cuda"]
    exact = gahb(*args, "--out", str(tmp_path / "f32"))
    fast = gahb(*args, "--out", str(tmp_path / "fast"), "--precision", "bf16", "--channels-last", "--compile")
    assert exact.returncode == 0 and fast.returncode == 0, fast.stderr
    a, b = (xr.open_zarr(tmp_path / d / "tiny-cnn-standard-smoke.zarr", group="generalization").load()
            for d in ("f32", "fast"))
    assert (b.status == 1).all()
    assert "acceleration" in read_identity(tmp_path / "fast" / "tiny-cnn-standard-smoke.zarr")
    assert not np.array_equal(b.psnr.values, a.psnr.values)  # the flags did something
    np.testing.assert_allclose(b.psnr.values, a.psnr.values, atol=1.0)


def test_training_keeps_data_and_noise_on_the_device():
    from gahb_bench.architectures.unet import UNet
    from gahb_bench.contracts import Training
    from gahb_bench.training import train_denoiser

    images = np.random.default_rng(0).uniform(size=(64, 1, 16, 16)).astype(np.float32)

    def host_to_device_copies(steps):
        model = UNet(1, blocks=1, width=8)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            train_denoiser(model, images, Training(steps=steps, batch_size=16), 0, torch.device("cuda"))
        return sum(e.count for e in prof.key_averages() if "Memcpy HtoD" in e.key)

    # Indices, σ and noise are drawn on the device: 50 more steps copy nothing more to it.
    assert host_to_device_copies(100) - host_to_device_copies(50) <= 2


def test_bias_free_unet_is_homogeneous_on_cuda():
    from gahb_bench.architectures.unet import UNet

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = UNet(1, blocks=2, width=8).cuda().double().eval()
    y = torch.rand(2, 1, 32, 32, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * y), 3.0 * model(y), rtol=1e-9, atol=1e-11)
