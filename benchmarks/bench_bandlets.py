"""Timing of the bandlet baseline against wavelet thresholding, measured side by side.

Prints, for 32×32 and 80×80 C^α images (α = 2, Hölder convention): the per-image time of
bandlet denoising and of wavelet thresholding (same images, same σ, same run) and their ratio;
then the time of one whole baseline curve (256 test images × 12 σ) at 80×80, extrapolated from
the per-image time measured over the 12 σ of the curve on a subset of images, or measured in
full with ``--full-curve``.

    python benchmarks/bench_bandlets.py [--images 32] [--full-curve]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from gahb_bench.baselines.bandlets import bandlet_denoise
from gahb_bench.baselines.wavelet import wavelet_denoise
from gahb_bench.image_classes.calpha import calpha_images

CURVE_IMAGES = 256
CURVE_SIGMAS = np.geomspace(0.01, 1.0, 12)


def _timed(fn, *args, repeats: int = 1, **kwargs) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def per_image_times(size: int, n: int, sigma: float = 0.1) -> tuple[float, float]:
    x = calpha_images(n, size, 2.0, edge="antialias", rng=np.random.default_rng(0))
    y = x + sigma * np.random.default_rng(1).standard_normal(x.shape)
    bandlet_denoise(y[:1], sigma)  # build the cached direction plans outside the timing
    tb = _timed(bandlet_denoise, y, sigma) / n
    tw = _timed(wavelet_denoise, y, sigma, repeats=3) / n
    return tb, tw


def curve_time(size: int, n: int) -> tuple[float, float]:
    """Seconds for n images × the 12 σ of the curve, bandlets and wavelets."""
    x = calpha_images(n, size, 2.0, edge="antialias", rng=np.random.default_rng(2))
    z = np.random.default_rng(3).standard_normal(x.shape)
    tb = tw = 0.0
    for s in CURVE_SIGMAS:
        tb += _timed(bandlet_denoise, x + s * z, s)
        tw += _timed(wavelet_denoise, x + s * z, s)
    return tb, tw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="images per timing (default 32)")
    ap.add_argument("--full-curve", action="store_true",
                    help="measure the whole 256 × 12 curve at 80×80 instead of extrapolating")
    args = ap.parse_args()
    print(f"bandlets (p=3, λ=2, T=3σ, db4, s=2) vs wavelet hard thresholding (db4, T=3σ); "
          f"{os.cpu_count()} CPUs visible")
    print(f"{'size':>6} {'bandlet s/img':>14} {'wavelet s/img':>14} {'ratio':>8}")
    for size in (32, 80):
        tb, tw = per_image_times(size, args.images)
        print(f"{size:>4}^2 {tb:>14.4f} {tw:>14.5f} {tb / tw:>8.0f}")
    n = CURVE_IMAGES if args.full_curve else min(args.images, CURVE_IMAGES)
    tb, tw = curve_time(80, n)
    scale = CURVE_IMAGES / n
    how = "measured" if args.full_curve else f"extrapolated from {n} images × 12 σ"
    print(f"whole curve at 80^2 ({CURVE_IMAGES} images × {len(CURVE_SIGMAS)} σ, {how}): "
          f"bandlets {tb * scale / 60:.1f} min, wavelets {tw * scale:.1f} s")


if __name__ == "__main__":
    main()
