"""The CUDA path (run with `pytest -m gpu` on a machine with a GPU)."""

import numpy as np
import pytest
import torch
import xarray as xr

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
    # Same seeds and noise (drawn on the CPU); kernels differ, so agreement is to a tolerance.
    np.testing.assert_allclose(b.psnr.values, a.psnr.values, atol=0.2)


def test_bias_free_unet_is_homogeneous_on_cuda():
    from gahb_bench.architectures.unet import UNet

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = UNet(1, blocks=2, width=8).cuda().double().eval()
    y = torch.rand(2, 1, 32, 32, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * y), 3.0 * model(y), rtol=1e-9, atol=1e-11)
