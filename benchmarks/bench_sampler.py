"""The reverse-diffusion sampler against the bare network, measured side by side.

1. Overhead: the mean time of one sampler step on a batch (everything the sampler does: the
   network, σ_t, the update, the noise draw) against one bare forward pass of the same network
   on the same batch, interleaved in the same run. Aim: at most 1.2× (the sampler adds nothing
   but the network).
2. Batching: 64 samples drawn as one batch against the same 64 drawn one image at a time.

    python benchmarks/bench_sampler.py                    # UNet at 16×16, batch 64
    python benchmarks/bench_sampler.py --size 32 --batch 64 --steps 40
"""

from __future__ import annotations

import argparse
import time

import torch

from gahb_bench.architectures.unet import build_unet
from gahb_bench.sampling import SamplerSettings, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="sampler steps timed (max_steps)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_unet(1, args.size).eval()
    shape = (args.batch, 1, args.size, args.size)
    # A fixed number of steps: σ_L unreachable, failures not raised.
    settings = SamplerSettings(sigma_final=1e-6, max_steps=args.steps, divergence_sigma=1e6)
    x = 0.5 + torch.randn(shape)
    with torch.no_grad():
        model(x)  # warm-up
    bare, stepped = float("inf"), float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(args.steps):
                model(x)
        bare = min(bare, (time.perf_counter() - t0) / args.steps)
        t0 = time.perf_counter()
        result = sample(model, shape, settings, seed=1, strict=False)
        # steps + the final f(y_T): one more forward pass than steps
        stepped = min(stepped, (time.perf_counter() - t0) / (int(result.steps.max()) + 1))
    print(f"UNet {args.size}x{args.size}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"  bare forward pass      {bare * 1e3:8.2f} ms")
    print(f"  sampler step           {stepped * 1e3:8.2f} ms   ratio {stepped / bare:.3f}  (aim <= 1.2)")

    n = 64
    shape64 = (n, 1, args.size, args.size)
    batched, single = float("inf"), float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        sample(model, shape64, settings, seed=2, strict=False)
        batched = min(batched, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(n):
            sample(model, (1, 1, args.size, args.size), settings, seed=2 + i, strict=False)
        single = min(single, time.perf_counter() - t0)
    print(f"  {n} samples, {args.steps} steps: batched {batched:.2f} s, one at a time {single:.2f} s, "
          f"speed-up {single / batched:.1f}x")


if __name__ == "__main__":
    main()
