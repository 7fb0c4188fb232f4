"""Near-duplicate removal (SCIENCE.md §2), in bounded memory.

Two images are near-duplicates when the correlation of their coarse versions exceeds a threshold:

    φ(x) = v / ‖v‖,   v = P x Pᵀ − mean(P x Pᵀ)   (flattened, m² = 400 numbers for m = 20),
    corr(x, x') = ⟨φ(x), φ(x')⟩,   near-duplicates ⟺ |corr(x, x')| > threshold (0.95 in the paper),

where P x Pᵀ is the average pooling of x to m×m. The paper removes these before training on
CelebA so that two "disjoint" subsets do not share an image under another name (Kadkhodaie et al.,
ICLR 2024, §2.2).

Pooling when the size S is not a multiple of m: each output cell averages its exact share of the
image, the square [i·S/m, (i+1)·S/m) × [j·S/m, (j+1)·S/m), with pixels cut by a cell boundary
counted with their fractional area (the "area" interpolation of image libraries). P is then a
m×S matrix whose rows sum to one; for S = k·m it is plain k×k block averaging.

An image whose pooled version is constant has no correlation with anything: φ = 0, never a match.

Which image of a pair is dropped (greedy in index order, order-stable): image i is KEPT iff no
KEPT image j < i has |corr| > threshold with it. So the first image of every group is kept, and
an image that only matches dropped images is kept too (A~B, B~C, A≁C keeps A and C). The result
depends only on the order of the images, not on the block size (up to float32 rounding of a
correlation that lies at the threshold).

The search compares every pair j < i once, by blocked matrix products F_I F_Jᵀ (float32) over
row blocks I and column blocks J < I (the diagonal blocks J = I in strips of rows): memory is
O(b²) for a block side b derived from ``max_bytes``, never O(n²); the public code forms the whole
n×n matrix (≈160 GB at n = 2·10⁵). Correlations within float32 rounding (~1e-6) of the threshold
may fall on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Working bytes per pair in a block: the float32 product and its boolean mask.
BYTES_PER_PAIR = 4 + 1

#: The diagonal block of side b is searched in strips of b // DIAGONAL_STRIPS rows.
DIAGONAL_STRIPS = 8

#: Default working memory of the pair search (the tiles only): 256 MiB → blocks of 7327².
DEFAULT_MAX_BYTES = 256 * 2**20


@dataclass(frozen=True)
class DedupResult:
    """The outcome of :func:`near_duplicates`.

    Attributes
    ----------
    kept : int64 indices of the kept images, increasing.
    duplicate_of : (n,) int64; for a dropped image, the smallest kept index it matches; −1 if kept.
    pairs_compared : number of pairs (j < i) whose correlation was computed, n(n−1)/2.
    pairs_found : number of those pairs with |corr| > threshold (kept or not).
    block_size : side of the square blocks of the pair search.
    """

    kept: np.ndarray
    duplicate_of: np.ndarray
    pairs_compared: int
    pairs_found: int
    block_size: int

    @property
    def n(self) -> int:
        return int(self.duplicate_of.shape[0])

    @property
    def removed(self) -> int:
        return self.n - int(self.kept.shape[0])


def pooling_matrix(size: int, pool: int = 20) -> np.ndarray:
    """The (pool, size) area-averaging matrix P: (P x Pᵀ) is x average-pooled to pool×pool.

    P[i, k] = |[k, k+1) ∩ [i·s, (i+1)·s)| / s with s = size / pool; every row sums to one.
    """
    size, pool = int(size), int(pool)
    if size < 1 or pool < 1:
        raise ValueError(f"size and pool must be positive, got size={size}, pool={pool}")
    edges = np.arange(pool + 1, dtype=np.float64) * (size / pool)
    pixels = np.arange(size, dtype=np.float64)
    overlap = (np.minimum(pixels[None, :] + 1, edges[1:, None]) - np.maximum(pixels[None, :], edges[:-1, None]))
    return np.clip(overlap, 0.0, None) / (size / pool)


def pooled_features(images: np.ndarray, pool: int = 20) -> np.ndarray:
    """Unit-norm, mean-removed average-pooled images φ(x): (n, pool²) float32.

    ``images``: (n, S, S) or (n, 1, S, S) grey images. Rows whose pooled image is constant are 0.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"pooled_features expects square grey images (n, S, S) or (n, 1, S, S), got {images.shape}")
    p = pooling_matrix(images.shape[-1], pool)
    pooled = np.matmul(np.matmul(p, images.astype(np.float64, copy=False)), p.T).reshape(len(images), -1)
    total = np.linalg.norm(pooled, axis=1, keepdims=True)
    pooled -= pooled.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    # constant up to rounding (including all-zero): no direction to correlate
    flat = norms <= 1e-6 * total
    return np.where(flat, 0.0, pooled / np.where(flat, 1.0, norms)).astype(np.float32)


def block_size_for(max_bytes: int, n: int | None = None) -> int:
    """Largest block side b with b²·BYTES_PER_PAIR ≤ max_bytes (at most n when given)."""
    max_bytes = int(max_bytes)
    side = math.isqrt(max_bytes // BYTES_PER_PAIR) if max_bytes > 0 else 0
    if side < 1:
        raise ValueError(f"max_bytes={max_bytes} is too small for even one pair ({BYTES_PER_PAIR} bytes)")
    return min(side, max(int(n), 1)) if n is not None else side


def near_duplicates(features: np.ndarray, threshold: float = 0.95, max_bytes: int = DEFAULT_MAX_BYTES,
                    block_size: int | None = None) -> DedupResult:
    """Greedy near-duplicate removal on unit-norm features, in blocks (see the module docstring).

    Parameters
    ----------
    features : (n, d) rows φ(x) of :func:`pooled_features` (unit norm or zero), float32.
    threshold : pairs with |⟨φ_i, φ_j⟩| > threshold are near-duplicates; in (0, 1].
    max_bytes : bound on the working memory of the search (the b×b tiles), bytes.
    block_size : block side b; overrides ``max_bytes`` when given.

    Returns
    -------
    :class:`DedupResult` — kept indices, the kept image each dropped one duplicates, and counts.
    """
    feats = np.ascontiguousarray(features, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d), got shape {feats.shape}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = feats.shape[0]
    b = int(block_size) if block_size is not None else block_size_for(max_bytes, n)
    if b < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    b = min(b, max(n, 1))
    t = np.float32(threshold)

    kept = np.ones(n, dtype=bool)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    tile_buf = np.empty(b * b, dtype=np.float32)  # reused: the search allocates nothing else O(b²)
    mask_buf = np.empty(b * b, dtype=bool)
    found = 0

    for a in range(0, n, b):
        rows = feats[a:a + b]
        br = rows.shape[0]
        first = np.full(br, -1, dtype=np.int64)
        # earlier blocks: their kept flags are final
        for c in range(0, a, b):
            cols = feats[c:c + b]
            tile = tile_buf[:br * b].reshape(br, b)
            mask = mask_buf[:br * b].reshape(br, b)
            np.matmul(rows, cols.T, out=tile)
            np.abs(tile, out=tile)
            np.greater(tile, t, out=mask)
            hits = int(np.count_nonzero(mask))
            if not hits:  # the common case: nothing near, skip the bookkeeping passes
                continue
            found += hits
            np.logical_and(mask, kept[c:c + b], out=mask)
            hit = mask.any(axis=1)
            new = hit & (first < 0)
            if new.any():
                first[new] = c + mask[new].argmax(axis=1)
        # the diagonal block, in strips of s rows against the block's rows up to the strip's end
        # (only the s×s corners are computed twice: waste s/b instead of 1/2 of the block);
        # rows are resolved in order, against the earlier rows of the block
        block_kept = kept[a:a + br]
        block_kept[:] = first < 0
        s = max(1, b // DIAGONAL_STRIPS)
        for s0 in range(0, br, s):
            strip = rows[s0:s0 + s]
            sr, width = strip.shape[0], s0 + strip.shape[0]
            tile = tile_buf[:sr * width].reshape(sr, width)
            mask = mask_buf[:sr * width].reshape(sr, width)
            np.matmul(strip, rows[:width].T, out=tile)
            np.abs(tile, out=tile)
            tile[np.arange(sr), s0 + np.arange(sr)] = 0.0  # an image is not its own duplicate
            np.greater(tile, t, out=mask)
            for k in np.flatnonzero(mask.any(axis=1)):
                i = s0 + k
                js = np.flatnonzero(mask[k, :i])
                found += js.size
                if block_kept[i]:
                    matches = js[block_kept[js]]
                    if matches.size:
                        block_kept[i] = False
                        first[i] = a + matches[0]
        duplicate_of[a:a + br] = np.where(block_kept, -1, first)

    return DedupResult(kept=np.flatnonzero(kept).astype(np.int64, copy=False), duplicate_of=duplicate_of,
                       pairs_compared=n * (n - 1) // 2, pairs_found=found, block_size=b)


def remove_near_duplicates(images: np.ndarray, threshold: float = 0.95, pool: int = 20,
                           max_bytes: int = DEFAULT_MAX_BYTES, block_size: int | None = None) -> DedupResult:
    """:func:`near_duplicates` on the :func:`pooled_features` of (n, S, S) images held in memory."""
    return near_duplicates(pooled_features(images, pool), threshold, max_bytes, block_size)
