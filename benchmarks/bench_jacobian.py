"""Jacobians of the UNet: batched vs row by row, against the matrix-multiply rate; matrix-free top-k.

1. Full Jacobian (``gahb_bench.jacobian.jacobian``: vmap over vector-Jacobian products) of the
   UNet at each size, for a batch of images. Its multiply-adds are D backward passes of the
   network, each about the forward pass's count (counted on the convolutions by hooks). The
   achieved rate is compared with a bare float32 matmul measured in the same run (aim: at least
   0.5) and with the public code's way, ``torch.autograd.functional.jacobian`` on one image at a
   time (row by row); on 2 CPU cores expect little from batching, on a GPU at least 20×.
2. Top-k eigenpairs of the Jacobian's symmetric part: matrix-free Lanczos
   (``top_eigenpairs``) against the full Jacobian then ``eigh``, same image; time ratio (aim at
   least 10× at 80×80) and the largest relative eigenvalue difference (aim ≤ 1e-3).

    python benchmarks/bench_jacobian.py                        # 32, 40 px full; 40, 80 px top-32
    python benchmarks/bench_jacobian.py --full-sizes 32 --topk-sizes 40 --batch 2
    python benchmarks/bench_jacobian.py --device cuda
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from gahb_bench.architectures.unet import build_unet
from gahb_bench.jacobian import eigh_descending, jacobian, top_eigenpairs


def forward_macs(model: torch.nn.Module, y: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of ``y`` through the convolutions of ``model``."""
    total = [0]

    def hook(module, inputs, output):
        kh, kw = module.kernel_size
        if isinstance(module, torch.nn.ConvTranspose2d):
            total[0] += inputs[0].numel() * module.out_channels * kh * kw // module.groups
        else:
            total[0] += output.numel() * module.in_channels * kh * kw // module.groups

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        model(y)
    for h in handles:
        h.remove()
    return total[0]


def matmul_rate(device: torch.device, n: int = 2048, repeat: int = 3) -> float:
    a = torch.randn(n, n, device=device)
    best = 0.0
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        a @ a
        _sync(device)
        best = max(best, n**3 / (time.perf_counter() - t0))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def _peak_mib(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-sizes", type=int, nargs="*", default=[32, 40])
    parser.add_argument("--topk-sizes", type=int, nargs="*", default=[40, 80])
    parser.add_argument("--batch", type=int, default=4, help="images for the full Jacobian")
    parser.add_argument("--rows", type=int, default=256, help="rows timed for the row-by-row loop")
    parser.add_argument("--chunk", type=int, default=32, help="images x rows per vmap call")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tol", type=float, default=1e-4, help="ARPACK tolerance of the tuned runs")
    parser.add_argument("--ncv", type=int, nargs="*", default=[96, 160], help="Lanczos basis sizes tried")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    rate = matmul_rate(device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, matmul {rate:.3e} MAC/s")

    for size in args.full_sizes:
        model = build_unet(1, size, blocks=2, init="unit-gain").to(device).eval()
        y = torch.rand(args.batch, 1, size, size, device=device)
        dim = size * size
        macs = forward_macs(model, y[:1]) * dim * args.batch
        J, seconds = _timed(lambda: jacobian(model, y, chunk_size=args.chunk), device)
        # The public code's loop: autograd, one image and one output pixel (row) at a time; timed
        # on the first ``rows`` rows of one image and scaled to the whole batch.
        point = y[:1].clone().requires_grad_(True)

        def rows():
            out = model(point).flatten()
            for i in range(min(args.rows, dim)):
                torch.autograd.grad(out[i], point, retain_graph=True)

        _, row_seconds = _timed(rows, device)
        row_total = row_seconds * dim / min(args.rows, dim) * args.batch
        print(f"full Jacobian, 2-block UNet {size}x{size}, {args.batch} images, D = {dim}: {seconds:.1f} s, "
              f"{macs / seconds:.3e} MAC/s = {macs / seconds / rate:.2f} of matmul (aim >= 0.5); "
              f"row by row (extrapolated from {min(args.rows, dim)} rows) {row_total:.1f} s: "
              f"batched is {row_total / seconds:.1f}x faster; peak {_peak_mib(device)}")
        del J

    for size in args.topk_sizes:
        model = build_unet(1, size, init="unit-gain").to(device).eval()
        y = torch.rand(1, 1, size, size, device=device)
        (full_vals, _), full_seconds = _timed(lambda: eigh_descending(jacobian(model, y, chunk_size=args.chunk)),
                                              device)
        print(f"top-{args.k} eigenpairs, UNet {size}x{size} (blocks auto): full Jacobian + eigh {full_seconds:.1f} s")
        for tol, ncv in ((1e-6, None), *((args.tol, n) for n in args.ncv)):
            calls = [0]
            hook = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
            (vals, _, resid), free_seconds = _timed(lambda: top_eigenpairs(model, y, args.k, tol=tol, ncv=ncv),
                                                    device)
            hook.remove()
            rel = np.max(np.abs(vals[0] - full_vals[0, :args.k]) / np.abs(full_vals[0, :args.k]))
            print(f"  matrix-free tol {tol:g}, ncv {ncv or 'default'}: {calls[0]} products, {free_seconds:.1f} s: "
                  f"{full_seconds / free_seconds:.1f}x faster (aim >= 10 at 80x80); largest relative eigenvalue "
                  f"difference {rel:.1e} (aim <= 1e-3); largest residual {resid.max():.1e}; peak {_peak_mib(device)}")


if __name__ == "__main__":
    main()
