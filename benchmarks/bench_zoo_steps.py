"""Training-step time of every installed architecture, side by side with the UNet's.

For each architecture (default: the built-ins and the gahb-zoo members) at 8 and 16 px (the
``smoke`` and ``cpu`` presets' sizes): the time of one training step (forward, backward, Adam)
on a batch of 64 with its default params, the median of ``--steps`` steps after 3 of warm-up,
and its ratio to the UNet's measured in the same run.

    python benchmarks/bench_zoo_steps.py [--steps 20] [--arch NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gahb_bench.registry import get_registry

DEFAULT = ("unet", "bfcnn", "dncnn", "local-cnn", "mlp", "vit", "attention-unet")


def step_seconds(name: str, size: int, steps: int) -> float:
    """Median seconds of one training step of ``name`` at ``size`` px, batch 64."""
    torch.manual_seed(0)
    record = get_registry().architecture(name)
    model = record.build(1, size, **record.params).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    clean = torch.rand(64, 1, size, size)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        loss = ((model(clean + 0.1 * torch.randn_like(clean)) - clean) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--arch", action="append", help="architectures (default: built-ins and zoo)")
    args = parser.parse_args()
    names = args.arch or [n for n in DEFAULT if n in get_registry().names("architectures")]
    for size in (8, 16):
        reference = step_seconds("unet", size, args.steps)
        for name in names:
            t = reference if name == "unet" else step_seconds(name, size, args.steps)
            print(f"{size:3d} px  {name:15s} {t * 1000:8.1f} ms/step  {t / reference:5.2f}x unet", flush=True)


if __name__ == "__main__":
    main()
