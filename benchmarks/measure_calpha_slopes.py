"""Wavelet-hard and bandlet PSNR slopes on C^α images: which class, size and σ range separate a
good basis from a bad one? (A measurement for choosing the battery's C^α experiment, not a test.)

For each (convention, edge, α) it draws ``n`` images, denoises them with the registered
``wavelet-hard`` and ``bandlets`` baselines at ``n_sigma`` log-spaced σ in [lo, hi], and prints
the least-squares slope of mean output PSNR against input PSNR next to the class's optimal slope
and the Wiener calibration slope of that range (``gahb_bench.metrics.psnr_slopes``).

    python benchmarks/measure_calpha_slopes.py --size 32 --n 96 --lo 0.02 --hi 0.2
"""

from __future__ import annotations

import argparse

import numpy as np

from gahb_bench.image_classes.calpha import CAlphaDataset
from gahb_bench.metrics.psnr import mse_per_image, psnr_from_mse, psnr_slope, sigma_grid
from gahb_bench.metrics.psnr_slopes import calibration_slope
from gahb_bench.registry import get_registry

CASES = (("holder", "antialias", 2.0), ("holder", "antialias", 3.0), ("holder", "antialias", 4.0),
         ("paper-code", None, 3.0), ("paper-code", None, 5.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--lo", type=float, default=0.02)
    parser.add_argument("--hi", type=float, default=0.2)
    parser.add_argument("--n-sigma", type=int, default=8)
    args = parser.parse_args()
    registry = get_registry()
    baselines = {name: registry.baseline(name) for name in ("wavelet-hard", "bandlets")}
    sigmas = sigma_grid(args.lo, args.hi, args.n_sigma)
    print(f"{args.size} px, {args.n} images, sigma in [{args.lo}, {args.hi}]")
    for convention, edge, alpha in CASES:
        data = CAlphaDataset(args.size, alpha=alpha, convention=convention, edge=edge)
        clean = data.test_set(args.n, seed=0)
        rng = np.random.default_rng(1)
        slopes = {}
        for name, b in baselines.items():
            curve = []
            for sigma in sigmas:
                noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
                curve.append(psnr_from_mse(mse_per_image(clean, b.denoise(noisy, float(sigma), **b.params))).mean())
            slopes[name] = psnr_slope(sigmas, np.array(curve))
        optimal = data.optimal_psnr_slope()
        wiener = calibration_slope(optimal, args.size, float(clean.std()), sigmas)
        print(f"  {convention:<10} {str(edge or 'box2'):<9} alpha {alpha:g}: optimal {optimal:.3f} "
              f"(Wiener calibration {wiener:.3f}), wavelet-hard {slopes['wavelet-hard']:.3f}, "
              f"bandlets {slopes['bandlets']:.3f}")


if __name__ == "__main__":
    main()
