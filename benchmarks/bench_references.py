"""Reference denoisers: achieved multiply-add rate against the machine's float64 matrix product,
peak memory, and time per call at the ``cpu`` preset's sizes.

Multiply-adds counted per call (B noisy images, N training images of D = C·H·W pixels, patch P):

* ``empirical``: 2·B·N·D (the inner products and the weighted sum: two matrix products);
* ``equivariant-local``: B·HW·N·HW·(C·P² + C) (patch inner products and the weighted sum of
  centre pixels: two matrix products of gathered patches), plus B·N·(HW)² exponentials;
* ``local``: B·HW·N·(C·P² + C) (per location, the same two products, batched over locations);
* ``gaussian``: fit (covariance N·D², eigh) and 2·B·D² per call.

Aim: at least half the matmul rate for ``empirical`` and ``local``. All run
in float64, as the metric does.

    python benchmarks/bench_references.py                 # 16 px, B = 16, N = 1000 and 20000
    python benchmarks/bench_references.py --size 8 --n-train 1000 --batch 8
    python benchmarks/bench_references.py --cell      # the whole metric per cpu-preset cell

``local`` runs one batched product per location whose inner dimension is only C·P² (26 at
P = 5): the line ``bmm bound`` times a bare ``bmm`` of that shape, the best a per-location
product can reach on this machine, so that the aim can be read against what is attainable.
The line ``exp bound`` is a bound no implementation escapes, fused or not: every logit of
``local`` needs one exponential for its C·P² + C multiply-adds, so at the measured float64 exp
rate E and matmul rate R it reaches at most 1 / (1 + R / ((C·P² + C)·E)) of R.
The line ``fused attention`` times the same computation through torch's fused
``scaled_dot_product_attention`` (no logits stored), a kernel that might have escaped that bound.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from gahb_bench.references.empirical import denoise_fitted, fit_empirical
from gahb_bench.references.gaussian import fit_gaussian, gaussian_denoise
from gahb_bench.references.local import (_query_patches, _windows, equivariant_local_denoise, fit_patches,
                                         local_denoise)


def matmul_rate(n: int = 1536, repeat: int = 3) -> float:
    a = torch.randn(n, n, dtype=torch.float64)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = max(best, n**3 / (time.perf_counter() - t0))
    return best


def _timed(fn, repeat: int = 1, budget: float = 1.0):
    """(the result, the best wall time of at least ``repeat`` calls, more, up to 200, while
    they take under ``budget`` seconds in all: a call of a few milliseconds needs many tries
    on a shared machine)."""
    best, spent, calls = float("inf"), 0.0, 0
    while calls < repeat or (spent < budget and calls < 200):
        t0 = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t0
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return out, best


def two_products_rate(rows: torch.Tensor, batch: int, repeat: int = 3) -> float:
    """Multiply-adds per second of the empirical optimum's two products alone, y Xᵀ and W X for
    (B, D) queries against the (N, D) float64 training rows: its bound on this machine, set by
    streaming X through memory twice once it exceeds the caches."""
    x = rows.to(torch.float64)
    y = torch.randn(batch, x.shape[1], dtype=torch.float64)
    _, seconds = _timed(lambda: (y @ x.T) @ x, repeat)
    return 2 * batch * x.shape[0] * x.shape[1] / seconds


def bmm_rate(pixels: int, batch: int, inner: int, n: int, repeat: int = 3) -> float:
    """Multiply-adds per second of a bare ``bmm`` (pixels, batch, inner) @ (pixels, inner, n)."""
    a = torch.randn(pixels, batch, inner, dtype=torch.float64)
    b = torch.randn(pixels, inner, n, dtype=torch.float64)
    _, seconds = _timed(lambda: torch.bmm(a, b), repeat)
    return pixels * batch * inner * n / seconds


def exp_rate(n: int = 1 << 16, repeat: int = 3) -> float:
    """Float64 exponentials per second on a block that stays in cache (``torch.exp``)."""
    x = -torch.rand(n, dtype=torch.float64)
    out = torch.empty_like(x)
    _, seconds = _timed(lambda: torch.exp(x, out=out), repeat)
    return n / seconds


def fused_local(state, noisy, sigma: float) -> torch.Tensor:
    """``local`` through torch's fused ``scaled_dot_product_attention``, for comparison: per
    location the same softmax average without storing the logits, the queries y_P extended by
    the constant −1/2σ² (times 1/σ² on y_P), the keys x_P by ‖x_P‖², the values the centre pixels."""
    y = torch.as_tensor(np.asarray(noisy), dtype=torch.float64)
    size, (batch, channels, height, width) = state.patch_size, y.shape
    pixels, half, scale = height * width, size // 2, 1.0 / (2.0 * sigma**2)
    queries = _query_patches(y, size).reshape(pixels, batch, -1)
    queries = torch.cat([2 * scale * queries, torch.full((pixels, batch, 1), -scale, dtype=torch.float64)], -1)
    keys = _windows(state.padded, height, width, size).reshape(pixels, channels * size * size, -1).transpose(1, 2)
    keys = torch.cat([keys, state.square_norms[:, :, None]], -1)
    values = state.padded[half:half + height, half:half + width].reshape(pixels, channels, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(queries, keys.contiguous(), values.contiguous(), scale=1.0)
    return out.permute(1, 2, 0).reshape(batch, channels, height, width)


def time_cells(size: int, n_trains: list[int]) -> None:
    """The whole ``reference_agreement`` metric with its default settings (as in the ``cpu``
    preset's photograph cells) on an untrained UNet: the references' cost does not depend on
    training, and the network's part (a forward pass, 16 VJPs per σ) is small."""
    from gahb_bench.image_classes.photographs import PhotographsDataset
    from gahb_bench.metrics import reference_agreement as metric
    from gahb_bench.metrics.context import MetricContext
    from gahb_bench.registry import get_registry

    dataset = PhotographsDataset(size)
    model = get_registry().entry("architectures", "unet").record.build(1, size).eval()
    for n in n_trains:
        train = dataset.train_subset(min(n, dataset.max_train() or n), subset=0, seed=0)
        ctx = MetricContext(model=model, train_images=train, dataset=dataset, data_seed=0,
                            settings=dict(metric.DEFAULTS), seed=0, device=torch.device("cpu"))
        _, seconds = _timed(lambda: metric.compute(ctx))
        print(f"reference_agreement, {size}x{size} photographs, N = {len(train)}: {seconds:.1f} s per cell "
              f"(defaults: {len(metric.DEFAULTS['sigmas'])} sigmas, {metric.DEFAULTS['n_images']} images, "
              f"patch sizes {metric.DEFAULTS['patch_sizes']}); peak "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="noisy images per call (the metric's n_images)")
    parser.add_argument("--n-train", type=int, nargs="*", default=[1000, 20000])
    parser.add_argument("--patch", type=int, default=5)
    parser.add_argument("--els-max-train", type=int, default=2000,
                        help="equivariant-local above this N is skipped (the metric's max_train)")
    parser.add_argument("--cell", action="store_true", help="time the whole metric per cell instead")
    parser.add_argument("--cell-n-train", type=int, nargs="*", default=[100, 1000, 6517])
    args = parser.parse_args()
    if args.cell:
        time_cells(args.size, args.cell_n_train)
        return
    rate = matmul_rate()
    print(f"torch threads {torch.get_num_threads()}, float64 matmul {rate:.3e} MAC/s")
    rng = np.random.default_rng(0)
    size, c, p = args.size, 1, args.patch
    hw, dim = size * size, size * size
    for n in args.n_train:
        train = rng.random((n, c, size, size))
        noisy = train[:args.batch] + 0.1 * rng.standard_normal((args.batch, c, size, size))
        fitted = fit_empirical(train)
        runs = [("empirical", 2 * args.batch * n * dim, lambda: denoise_fitted(fitted, noisy, 0.1))]
        state = fit_patches(train, p)
        runs.append(("local", args.batch * hw * n * (c * p * p + c), lambda: local_denoise(state, noisy, 0.1)))
        if n <= args.els_max_train:
            els = fit_patches(train, p)
            runs.append(("equivariant-local", args.batch * hw * n * hw * (c * p * p + c),
                         lambda: equivariant_local_denoise(els, noisy, 0.1)))
        fit, fit_seconds = _timed(lambda: fit_gaussian(train))
        runs.append(("gaussian", 2 * args.batch * dim * dim, lambda: gaussian_denoise(fit, noisy, 0.1)))
        for name, macs, call in runs:
            call()  # warm-up
            _, seconds = _timed(call, repeat=3)
            extra = f" (fit {fit_seconds:.2f} s)" if name == "gaussian" else ""
            print(f"{name:>18} {size}x{size}, B = {args.batch}, N = {n}, P = {p}: {seconds:.3f} s per call{extra}, "
                  f"{macs / seconds:.3e} MAC/s = {macs / seconds / rate:.2f} of matmul; peak "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)")
            if name == "empirical":
                bound = two_products_rate(fitted.rows if fitted.rows is not None else
                                          torch.as_tensor(train.reshape(n, -1)), args.batch)
                print(f"{'matmul bound':>18} two bare products (B, D) @ (D, N), (B, N) @ (N, D): {bound:.3e} MAC/s "
                      f"= {bound / rate:.2f} of matmul; empirical reaches {macs / seconds / bound:.2f} of it")
            if name == "local":
                bound = bmm_rate(hw, args.batch, c * p * p, min(n, 4096))
                print(f"{'bmm bound':>18} ({hw}, {args.batch}, {c * p * p}) @ ({hw}, {c * p * p}, {min(n, 4096)}): "
                      f"{bound:.3e} MAC/s = {bound / rate:.2f} of matmul; local reaches {macs / seconds / bound:.2f} "
                      "of it")
                exps = exp_rate()
                depth = c * p * p + c
                cap = 1.0 / (1.0 + rate / (depth * exps))
                print(f"{'exp bound':>18} one float64 exp per logit, {depth} multiply-adds per logit: "
                      f"{exps:.3e} exp/s, so even with its products at the matmul rate local could reach at most "
                      f"{cap:.2f} of matmul (1 / (1 + matmul rate / ({depth} · exp rate)))")
                fused, fused_seconds = _timed(lambda: fused_local(state, noisy, 0.1), repeat=3)
                error = float((fused - torch.as_tensor(local_denoise(state, noisy, 0.1))).abs().max())
                print(f"{'fused attention':>18} the same through scaled_dot_product_attention: {fused_seconds:.3f} s "
                      f"per call, {seconds / fused_seconds:.2f}× local's speed (max difference {error:.1e})")


if __name__ == "__main__":
    main()
