"""Near-duplicate removal: pooling, features, the blocked search against an O(n²) reference, memory."""

import tracemalloc

import numpy as np
import pytest

from gahb_bench.data.dedup import (
    BYTES_PER_PAIR,
    block_size_for,
    near_duplicates,
    pooled_features,
    pooling_matrix,
    remove_near_duplicates,
)


def brute_force(features, threshold):
    """The definition, O(n²) in float64: greedy keep-earliest against kept images only."""
    f = features.astype(np.float64)
    corr = np.abs(f @ f.T)
    kept, duplicate_of = [], np.full(len(f), -1)
    for i in range(len(f)):
        matches = [j for j in kept if corr[i, j] > threshold]
        if matches:
            duplicate_of[i] = matches[0]
        else:
            kept.append(i)
    pairs_found = int(np.count_nonzero(np.tril(corr, -1) > threshold))
    return np.array(kept), duplicate_of, pairs_found


def planted(n=300, size=40, seed=0):
    """Random images with planted near-duplicates: rescaled, negated, noised, and a chain."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, size, size))
    for _ in range(25):
        i, j = sorted(rng.choice(n, 2, replace=False))
        x[j] = rng.uniform(-2, 2) * x[i] + rng.uniform(-1, 1) + 0.15 * rng.standard_normal((size, size))
    # a chain A ~ B ~ C with A ≁ C: angles of 14° between neighbours, 28° between the ends
    a, b, c = n - 30, n - 20, n - 10
    e1, e2 = x[a] / np.linalg.norm(x[a]), x[a + 1] - x[a + 1].mean()
    e2 = e2 - (e2 * e1).sum() * e1
    e2 /= np.linalg.norm(e2)
    theta = np.deg2rad(14.0)
    x[b] = np.cos(theta) * e1 + np.sin(theta) * e2
    x[c] = np.cos(2 * theta) * e1 + np.sin(2 * theta) * e2
    x[a] = e1
    return x, (a, b, c)


def test_pooling_matrix_divisible_is_block_average():
    rng = np.random.default_rng(1)
    x = rng.random((80, 80))
    p = pooling_matrix(80, 20)
    np.testing.assert_allclose(p @ x @ p.T, x.reshape(20, 4, 20, 4).mean(axis=(1, 3)), rtol=1e-12)


def test_pooling_matrix_fractional_area():
    p = pooling_matrix(30, 20)  # cells 1.5 pixels wide
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0, :3], [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(p[1, :3], [0.0, 1 / 3, 2 / 3])
    # the total mass is preserved: each pixel contributes its full area once
    np.testing.assert_allclose(p.sum(axis=0), np.full(30, 20 / 30))


def test_features_unit_norm_and_affine_invariant():
    rng = np.random.default_rng(2)
    x = rng.random((5, 30, 30))
    f = pooled_features(x)
    assert f.shape == (5, 400) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(f.sum(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(pooled_features(0.3 * x + 0.5), f, atol=1e-6)
    np.testing.assert_allclose(pooled_features(-2.0 * x), -f, atol=1e-6)
    assert not pooled_features(np.full((1, 1, 40, 40), 0.7)).any()  # constant image: no direction


@pytest.mark.parametrize("block", [1, 7, 64, 299, 300, 1000])
def test_blocked_search_matches_brute_force(block):
    x, _ = planted()
    f = pooled_features(x)
    kept, duplicate_of, pairs_found = brute_force(f, 0.95)
    result = near_duplicates(f, 0.95, block_size=block)
    np.testing.assert_array_equal(result.kept, kept)
    np.testing.assert_array_equal(result.duplicate_of, duplicate_of)
    assert result.pairs_found == pairs_found >= 25
    assert result.pairs_compared == 300 * 299 // 2
    assert result.removed == 300 - len(kept)


def test_chain_keeps_the_image_that_only_matches_a_dropped_one():
    x, (a, b, c) = planted()
    result = near_duplicates(pooled_features(x), 0.95, block_size=16)
    assert a in result.kept and c in result.kept and b not in result.kept
    assert result.duplicate_of[b] == a and result.duplicate_of[c] == -1


def test_decisions_depend_only_on_earlier_images():
    x, _ = planted(seed=3)
    f = pooled_features(x)
    full = near_duplicates(f, 0.95, block_size=50)
    prefix = near_duplicates(f[:170], 0.95, block_size=23)
    np.testing.assert_array_equal(prefix.kept, full.kept[full.kept < 170])


def test_noisy_brightness_copy_is_found_on_images():
    rng = np.random.default_rng(4)
    x = rng.random((20, 80, 80))
    x[13] = np.clip(0.7 * x[5] + 0.1 + 0.01 * rng.standard_normal((80, 80)), 0, 1)
    result = remove_near_duplicates(x)
    np.testing.assert_array_equal(result.kept, np.delete(np.arange(20), 13))
    assert result.duplicate_of[13] == 5 and result.pairs_found == 1


def test_block_size_from_max_bytes():
    for max_bytes in (5, 999, 1 << 20, 256 << 20):
        b = block_size_for(max_bytes)
        assert b * b * BYTES_PER_PAIR <= max_bytes < (b + 1) ** 2 * BYTES_PER_PAIR
    assert block_size_for(1 << 20, n=10) == 10
    with pytest.raises(ValueError, match="too small"):
        block_size_for(4)


def test_memory_stays_within_max_bytes():
    rng = np.random.default_rng(5)
    f = rng.standard_normal((3000, 400)).astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    max_bytes = 1_000_000
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = near_duplicates(f, 0.95, max_bytes=max_bytes)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert result.block_size == block_size_for(max_bytes)
    # tiles within max_bytes; besides them only O(n) bookkeeping: flags and two int64 index
    # arrays (the result), i.e. 17 bytes per image, and a few small temporaries
    assert peak <= max_bytes + 24 * 3000 + 32_768, peak
    # the full n×n float32 matrix would be 36 MB
    assert peak < 3000 * 3000 * 4 / 10


def test_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(np.zeros((3, 4), np.float32), threshold=0.0)
    with pytest.raises(ValueError, match="2-D"):
        near_duplicates(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="square"):
        pooled_features(np.zeros((2, 10, 12)))
