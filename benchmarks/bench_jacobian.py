"""Jacobians of the UNet: batched vs row by row, against the matrix-multiply rate; matrix-free top-k.

1. Full Jacobian (``gahb_bench.jacobian.jacobian``: vmap over vector-Jacobian products) of the
   UNet at each size, for a batch of images. Its multiply-adds are D backward passes of the
   network, each about the forward pass's count (counted on the convolutions by hooks). The
   achieved rate is compared with a bare float32 matmul measured in the same run (aim: at least
   0.5) and with the public code's way, ``torch.autograd.functional.jacobian`` on one image at a
   time (row by row); on 2 CPU cores expect little from batching, on a GPU at least 20×.
2. Top-k eigenpairs of the Jacobian's symmetric part: matrix-free block Lanczos
   (``top_eigenpairs``) against the full Jacobian then ``eigh``, same image; time ratio (aim at
   least 10× at 80×80), products of S with a vector, and the largest relative eigenvalue
   difference (aim ≤ 1e-3). The network is the 2-block UNet trained briefly (``--train-steps``
   on 40×40 photographs, then applied at each size: it is convolutional) and the points a noisy
   photograph at each of ``--sigmas`` (default σ = 0.1), so that the spectrum falls off as a
   denoiser's does (Fig. 3). The products a Krylov method needs depend on how far the top k
   stand from the rest of the spectrum (the printed λ_k, λ_{k+1}, λ_{4k}), which varies with the
   network and σ; the ``gahb`` metric's own σ (0.04, 0.15, 0.4) show the range. An
   untrained network (``--train-steps 0``) is close to the identity, all 6400 eigenvalues at
   80×80 within [0.96, 1.04]: the worst case for any Krylov method, not the metric's case.
   ``--checkpoint CKPT`` measures a network trained by ``gahb run`` instead (a fully
   convolutional grayscale architecture, as it is applied at each size: its plugin builds it
   from the fields the checkpoint records); the points are photographs whatever it was trained on.

    python benchmarks/bench_jacobian.py                        # 32, 40 px full; 40, 80 px top-32
    python benchmarks/bench_jacobian.py --full-sizes 32 --topk-sizes 40 --batch 2
    python benchmarks/bench_jacobian.py --full-sizes --topk-sizes 80 --sigmas 0.04 0.15 0.4 --tols 1e-4 --blocks 8
    python benchmarks/bench_jacobian.py --full-sizes --topk-sizes 80 --sigmas 0.04 0.15 0.4 \
        --tols 1e-4 --blocks 8 --checkpoint OUT/checkpoints/unet/KEY.pt
    python benchmarks/bench_jacobian.py --device cuda
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

import gahb_bench.jacobian as jac
from gahb_bench.architectures.unet import build_unet
from gahb_bench.contracts import Training
from gahb_bench.image_classes.photographs import PhotographsDataset
from gahb_bench.jacobian import eigh_descending, jacobian, top_eigenpairs
from gahb_bench.training import train_denoiser


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
    parser.add_argument("--chunk", type=int, default=None,
                        help="images x rows per vmap call of the full Jacobian (default: on a CPU "
                             "max(1, CPU_CHUNK_PIXELS // D), jacobian.cpu_chunk_size; on a GPU 32)")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tols", type=float, nargs="*", default=[1e-3, 1e-4],
                        help="residual tolerances of the matrix-free runs (relative to the top eigenvalue)")
    parser.add_argument("--blocks", type=int, nargs="*", default=[4, 8], help="block sizes tried")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1],
                        help="noise levels of the top-k points (the gahb metric uses 0.04 0.15 0.4)")
    parser.add_argument("--train-steps", type=int, default=300,
                        help="training steps of the top-k network (0: untrained, near the identity)")
    parser.add_argument("--checkpoint", default=None,
                        help="a gahb checkpoint (CHECKPOINTS/ARCH/KEY.pt, written by `gahb run`) of a "
                             "fully convolutional grayscale model, used as the top-k network instead of "
                             "training one (--train-steps is then ignored)")
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
        chunk = args.chunk or jac.device_chunk_size(dim, device)
        J, seconds = _timed(lambda: jacobian(model, y, chunk_size=chunk), device)
        # The public code's loop: autograd, one image and one output pixel (row) at a time; timed
        # on the first ``rows`` rows of one image and scaled to the whole batch.
        point = y[:1].clone().requires_grad_(True)

        def rows():
            out = model(point).flatten()
            for i in range(min(args.rows, dim)):
                torch.autograd.grad(out[i], point, retain_graph=True)

        _, row_seconds = _timed(rows, device)
        row_total = row_seconds * dim / min(args.rows, dim) * args.batch
        print(f"full Jacobian, 2-block UNet {size}x{size}, {args.batch} images, D = {dim}, chunk {chunk}: {seconds:.1f} s, "
              f"{macs / seconds:.3e} MAC/s = {macs / seconds / rate:.2f} of matmul (aim >= 0.5); "
              f"row by row (extrapolated from {min(args.rows, dim)} rows) {row_total:.1f} s: "
              f"batched is {row_total / seconds:.1f}x faster; peak {_peak_mib(device)}")
        del J

    if not args.topk_sizes:
        return
    if args.checkpoint:
        try:
            model, about = _from_checkpoint(args.checkpoint)
        except Exception as exc:  # a missing file, not a checkpoint, an unknown architecture
            parser.error(f"--checkpoint {args.checkpoint}: cannot load a grayscale model from it "
                         f"({type(exc).__name__}: {exc})")
        print(f"top-k network: {about}; points: a noisy test photograph")
    else:
        model = build_unet(1, 40, blocks=2, init="unit-gain")
    model = model.to(device)
    if args.train_steps and not args.checkpoint:
        images = PhotographsDataset(40).train_subset(256, subset=0, seed=0)
        log = train_denoiser(model, images, Training(steps=args.train_steps, batch_size=8), 0, device)
        print(f"top-k network: 2-block UNet trained {args.train_steps} steps on 40x40 photographs "
              f"({log.seconds:.0f} s); points: a noisy test photograph")
    model.eval()
    for size, sigma in ((size, sigma) for size in args.topk_sizes for sigma in args.sigmas):
        clean = PhotographsDataset(size).test_set(1, seed=1)
        noise = np.random.default_rng(0).standard_normal(clean.shape)
        y = torch.from_numpy((clean + sigma * noise).astype(np.float32))
        chunk = args.chunk or jac.device_chunk_size(size * size, device)
        (full_vals, _), full_seconds = _timed(lambda: eigh_descending(jacobian(model, y, chunk_size=chunk)),
                                              device)
        top, far = full_vals[0, :args.k + 1], min(4 * args.k, size * size)
        print(f"top-{args.k} eigenpairs at {size}x{size}, sigma {sigma:g}: full Jacobian ({chunk} rows per call) + eigh "
              f"{full_seconds:.1f} s; eigenvalues 1, {args.k}, {args.k + 1}, {far}: {top[0]:.4f}, {top[-2]:.4f}, "
              f"{top[-1]:.4f}, {full_vals[0, far - 1]:.4f}")
        for tol in args.tols:
            for block in args.blocks:
                (vals, _, resid), free_seconds = _timed(
                    lambda: _counting_products(model, y, args.k, tol=tol, block=block), device)
                vals, products = vals
                rel = np.max(np.abs(vals[0] - full_vals[0, :args.k]) / np.abs(full_vals[0, :args.k]))
                print(f"  matrix-free tol {tol:g}, block {block}: {products} products, {free_seconds:.1f} s: "
                      f"{full_seconds / free_seconds:.1f}x faster (aim >= 10 at 80x80); largest relative eigenvalue "
                      f"difference {rel:.1e} (aim <= 1e-3); largest residual {resid.max():.1e}; "
                      f"peak {_peak_mib(device)}")


def _from_checkpoint(path: str) -> tuple[torch.nn.Module, str]:
    """The model of a gahb checkpoint, built by its architecture plugin from the fields it
    records, and a line saying what it is."""
    from gahb_bench.registry import get_registry

    blob = torch.load(path, map_location="cpu", weights_only=True)
    fields = blob["fields"]
    entry = get_registry().entry("architectures", fields["arch"])
    if entry.plugin.version != fields["arch_version"]:
        print(f"warning: the checkpoint was trained with {fields['arch']} plugin version "
              f"{fields['arch_version']}; version {entry.plugin.version} is installed")
    if "acceleration" in fields:
        print(f"warning: the checkpoint was trained with {fields['acceleration']}; the Jacobians are "
              "computed in float32")
    model = entry.record.build(1, fields["image_size"], **fields["arch_params"])
    model.load_state_dict(blob["state_dict"])
    steps = fields["training"]["steps"]
    return model, (f"{fields['arch']} {fields['arch_params']} trained {steps} steps on {fields['n_train']} "
                   f"{fields['image_size']}x{fields['image_size']} images of {fields['image_class']} (seed "
                   f"{fields['seed']}), from {path}")


def _counting_products(model, y, k, **kwargs):
    """``top_eigenpairs``, with the number of products S v it made (by wrapping its solver)."""
    count = [0]
    solver = jac.block_lanczos

    def counted(apply, *args, **kw):
        def apply_counted(rows):
            count[0] += len(rows)
            return apply(rows)
        return solver(apply_counted, *args, **kw)

    jac.block_lanczos = counted
    try:
        vals, vecs, resid = top_eigenpairs(model, y, k, **kwargs)
    finally:
        jac.block_lanczos = solver
    return (vals, count[0]), vecs, resid

if __name__ == "__main__":
    main()
