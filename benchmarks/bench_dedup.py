"""Near-duplicate pass vs the machine's float32 matrix-multiply rate, measured side by side.

For each block size, the pass (gahb_bench.data.dedup.near_duplicates on n unit-norm features of
dimension 400 = 20×20, with a few planted duplicates) is timed, and so is a bare numpy
float32 matmul of the same tile shape (b×400 by 400×b, written into a preallocated b×b
output), both in the same run, interleaved and best-of-``repeat``. One correlation is one
output element of a matmul, so both rates are in pairs per second and their ratio says how much
of the matmul rate the pass keeps (aim: at least 0.5). The pass's own overheads: the
thresholding passes over each tile, and the diagonal blocks' s×s corners (s = b/8) computed twice.

    python benchmarks/bench_dedup.py            # n = 30000
    python benchmarks/bench_dedup.py --n 60000 --blocks 2048 4096 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gahb_bench.data.dedup import BYTES_PER_PAIR, DEFAULT_MAX_BYTES, block_size_for, near_duplicates


def features(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, d)).astype(np.float32)
    planted = rng.choice(n, size=(n // 1000 + 1, 2), replace=False)
    f[planted[:, 1]] = f[planted[:, 0]] + 0.1 * rng.standard_normal((len(planted), d)).astype(np.float32)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def matmul_rate(f: np.ndarray, b: int, reps: int) -> float:
    """Output elements per second of np.matmul(F_I, F_Jᵀ, out=tile) for b×b tiles."""
    rows, cols = f[:b], f[b:2 * b] if len(f) >= 2 * b else f[:b]
    out = np.empty((len(rows), len(cols)), np.float32)
    np.matmul(rows, cols.T, out=out)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        np.matmul(rows, cols.T, out=out)
    return reps * out.size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30000, help="number of images (features)")
    parser.add_argument("--dim", type=int, default=400, help="feature dimension (20×20 pooling: 400)")
    parser.add_argument("--blocks", type=int, nargs="*", default=None,
                        help="block sides to try (default: 2048, 4096 and the default max_bytes' block)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many timings of each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    f = features(args.n, args.dim, args.seed)
    blocks = args.blocks or sorted({2048, 4096, block_size_for(DEFAULT_MAX_BYTES, args.n)})
    print(f"n = {args.n}, d = {args.dim}, pairs = {args.n * (args.n - 1) // 2:.3e}, numpy {np.__version__}")
    header = (f"{'block':>6} {'tile MiB':>9} {'pass s':>8} {'pass pairs/s':>13} {'matmul pairs/s':>15} "
              f"{'ratio':>6} {'found':>6}")
    print(header)
    print("-" * len(header))
    overall = 0.0
    for b in blocks:
        best_pass, best_mm, result = 0.0, 0.0, None
        for _ in range(args.repeat):
            reps = max(3, int(4e8 // (b * b * args.dim)))
            best_mm = max(best_mm, matmul_rate(f, b, reps))
            t0 = time.perf_counter()
            result = near_duplicates(f, 0.95, block_size=b)
            best_pass = max(best_pass, result.pairs_compared / (time.perf_counter() - t0))
        print(f"{b:>6} {b * b * BYTES_PER_PAIR / 2**20:>9.1f} {result.pairs_compared / best_pass:>8.2f} "
              f"{best_pass:>13.3e} {best_mm:>15.3e} {best_pass / best_mm:>6.2f} {result.pairs_found:>6}")
        overall = max(overall, best_pass)
    n_paper = 200_000
    print(f"extrapolated to n = {n_paper} (CelebA scale) at the best pass rate above: "
          f"{n_paper * (n_paper - 1) / 2 / overall / 60:.1f} min; features {n_paper * args.dim * 4 / 2**20:.0f} MiB "
          f"+ tiles {block_size_for(DEFAULT_MAX_BYTES) ** 2 * BYTES_PER_PAIR / 2**20:.0f} MiB (default max_bytes)")


if __name__ == "__main__":
    main()
