"""Nearest-neighbour search and the empirical optimum f_N against the matrix-multiply rate.

Both are matrix products at heart: M queries (or noisy images) against N training images of D
pixels is M·N·D multiply-adds. Each is timed on the same data as a bare torch matmul of the same
shapes (queries × a chunk of references), in the same run, best of ``repeat``; the ratio of
achieved multiply-add rates says how much of the machine's matmul rate the search keeps (aim: at
least 0.5). Peak memory of the similarity blocks is printed from the block sizes.

    python benchmarks/bench_neighbours.py                 # M = 256, N = 20000, D = 256
    python benchmarks/bench_neighbours.py --n 100000 --chunk 8192 --dtype float32
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gahb_bench.references.empirical import empirical_denoise
from gahb_bench.similarity import nearest_neighbours


def matmul_rate(q: torch.Tensor, r: torch.Tensor, chunk: int) -> float:
    """Multiply-adds per second of q @ r_cᵀ over chunks r_c of r (what both searches do)."""
    t0 = time.perf_counter()
    for start in range(0, len(r), chunk):
        q @ r[start:start + chunk].T
    return q.shape[0] * r.shape[0] * r.shape[1] / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=256, help="queries")
    parser.add_argument("--n", type=int, default=20000, help="training images")
    parser.add_argument("--d", type=int, default=256, help="pixels per image")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    rng = np.random.default_rng(0)
    train = rng.random((args.n, 1, 1, args.d))
    queries = rng.random((args.m, 1, 1, args.d))
    q = torch.as_tensor(queries.reshape(args.m, -1), dtype=dtype)
    r = torch.as_tensor(train.reshape(args.n, -1), dtype=dtype)
    macs = args.m * args.n * args.d
    print(f"M = {args.m}, N = {args.n}, D = {args.d}, chunk {args.chunk}, {args.dtype}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  similarity block: {args.m * args.chunk * np.dtype(args.dtype).itemsize / 2**20:.1f} MiB "
          f"(the full M × N matrix would be {args.m * args.n * np.dtype(args.dtype).itemsize / 2**20:.1f} MiB)")
    for name, run in (
        ("nearest_neighbours (cosine, k=2)", lambda: nearest_neighbours(queries, train, k=2, chunk=args.chunk,
                                                                       dtype=dtype)),
        ("empirical_denoise (f_N)", lambda: empirical_denoise(train, queries, 0.1, chunk=args.chunk, dtype=dtype)),
    ):
        best, best_mm = 0.0, 0.0
        for _ in range(args.repeat):
            best_mm = max(best_mm, matmul_rate(q, r, args.chunk))
            t0 = time.perf_counter()
            run()
            best = max(best, macs / (time.perf_counter() - t0))
        # f_N does a second product (weights @ X_c) of the same size
        factor = 2 if name.startswith("empirical") else 1
        print(f"  {name:<34} {factor * best:10.3e} MAC/s   matmul {best_mm:10.3e} MAC/s   "
              f"ratio {factor * best / best_mm:.2f}  (aim >= 0.5)")


if __name__ == "__main__":
    main()
