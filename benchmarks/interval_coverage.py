"""Coverage of the scorecard's two-axis percentile bootstrap (replicates × test images).

Simulates a score that is the mean of x[r, i] = a_r + b_i + e_ri over R replicates and I test
images (a: the replicate effect, the training subset; b: the image effect; e: their
interaction; all Gaussian, true mean 0), takes its interval from the scorecard's own
:func:`gahb_bench.scorecard._image_interval` (both axes resampled independently, 2,000
resamples), and prints how often the 95% percentile interval holds the true mean. With R = 2 it falls below 95% when the replicate effect
dominates: the interval then says how the test images vary more than how training does.

    python benchmarks/interval_coverage.py [--replicates 2] [--images 16] [--trials 400]
"""

from __future__ import annotations

import argparse

import numpy as np

from gahb_bench.bootstrap import CONFIDENCE
from gahb_bench.scorecard import _image_interval


def _mean(d: np.ndarray, r: np.ndarray, i: np.ndarray) -> float:
    return float(d[r][:, i].mean())


def coverage(replicate_sd: float, image_sd: float, noise_sd: float, replicates: int, images: int,
             trials: int, rng: np.random.Generator) -> float:
    """The fraction of ``trials`` simulated stores whose interval holds the true mean 0."""
    hits = 0
    for _ in range(trials):
        x = (replicate_sd * rng.standard_normal((replicates, 1)) + image_sd * rng.standard_normal((1, images))
             + noise_sd * rng.standard_normal((replicates, images)))
        low, high, _ = _image_interval(x, _mean)
        hits += low < 0 < high
    return hits / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--trials", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(f"{args.replicates} replicates x {args.images} images, {args.trials} trials: coverage of the "
          f"{CONFIDENCE:.0%} interval")
    for label, sds in (("replicates dominate", (1.0, 0.3, 0.3)), ("images dominate", (0.3, 1.0, 0.3)),
                       ("interaction dominates", (0.3, 0.3, 1.0)), ("no replicate effect", (0.0, 1.0, 1.0))):
        print(f"  {label:<22} sd (a, b, e) = {sds}: {coverage(*sds, args.replicates, args.images, args.trials, rng):.2f}")


if __name__ == "__main__":
    main()
