"""The orthogonal bandlet transform, geometry selection and the estimator."""

import numpy as np
import pytest

from gahb_bench.baselines.bandlets import (
    BandletGeometry,
    bandlet_denoise,
    bandlet_forward,
    bandlet_inverse,
    direction_set,
    geometry_cost,
    select_geometry,
)
from gahb_bench.baselines.wavelet import wavelet_forward


def random_geometry(size, rng, p=3, max_width=32, min_width=2, wavelet="db4"):
    """Random quadtree (split with probability ½ while allowed) and random directions
    (uniform in [0, π), or ∅ with probability ¼) on top of the root squares."""
    base = BandletGeometry.wavelet_only(size, wavelet=wavelet, p=p, max_width=max_width)
    leaves = []
    stack = list(zip(base.scale, base.band, base.row, base.col, base.width))
    while stack:
        j, b, r, c, w = stack.pop()
        if w % 2 == 0 and w // 2 >= min_width and rng.random() < 0.5:
            h = w // 2
            stack += [(j, b, r + dr, c + dc, h) for dr in (0, h) for dc in (0, h)]
        else:
            leaves.append((j, b, r, c, w))
    a = np.array(leaves)
    angles = np.where(rng.random(len(a)) < 0.25, np.nan, rng.uniform(0, np.pi, len(a)))
    # A few exact axis and diagonal directions, where many points share a projection.
    angles[:4] = [0.0, np.pi / 2, np.pi / 4, 3 * np.pi / 4]
    return BandletGeometry(size, base.levels, wavelet, p, max_width, a[:, 0], a[:, 1], a[:, 2],
                           a[:, 3], a[:, 4], angles)


@pytest.mark.parametrize("size,p,seed", [(32, 3, 0), (32, 1, 1), (80, 3, 2), (80, 4, 3), (40, 2, 4)])
def test_random_geometry_is_orthonormal(size, p, seed):
    rng = np.random.default_rng(seed)
    g = random_geometry(size, rng, p=p, max_width=16 if size == 40 else 32)
    assert g.n_directions > 4
    x = rng.standard_normal((2, size, size))
    b = bandlet_forward(x, g)
    np.testing.assert_allclose(np.linalg.norm(b, axis=(1, 2)), np.linalg.norm(x, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(bandlet_inverse(b, g), x, atol=1e-10)
    # It really is a different basis from the wavelet basis.
    w, _ = wavelet_forward(x)
    assert np.abs(b - w).max() > 1e-3


def test_full_basis_matrix_is_orthogonal():
    g = random_geometry(16, np.random.default_rng(5), min_width=2)
    eye = np.eye(256).reshape(-1, 16, 16)
    m = bandlet_forward(eye, g).reshape(256, 256)
    np.testing.assert_allclose(m @ m.T, np.eye(256), atol=1e-12)


@pytest.mark.parametrize("size", [32, 80])
def test_no_direction_everywhere_is_the_wavelet_transform(size):
    rng = np.random.default_rng(6)
    g = random_geometry(size, rng)
    g = BandletGeometry(g.size, g.levels, g.wavelet, g.p, g.max_width, g.scale, g.band, g.row,
                        g.col, g.width, np.full(len(g.angle), np.nan))
    x = rng.random((2, size, size))
    w, _ = wavelet_forward(x)
    np.testing.assert_array_equal(bandlet_forward(x, g), w)
    np.testing.assert_allclose(bandlet_inverse(w, g), x, atol=1e-12)
    np.testing.assert_array_equal(bandlet_forward(x, BandletGeometry.wavelet_only(size)), w)


def test_direction_set_contains_axes():
    th = direction_set(5, 2)
    assert len(th) == 10 and th[0] == 0.0 and np.isclose(th[5], np.pi / 2) and th.max() < np.pi


def test_straight_edge_is_sparser_with_its_direction():
    # A horizontal step edge: its wavelet coefficients are constant along rows, so the bandlets
    # of direction 0 carry them in far fewer coefficients than the wavelet basis.
    size = 32
    x = np.zeros((size, size))
    x[size // 2 + 3:] = 1.0
    g0 = BandletGeometry.wavelet_only(size)
    g = BandletGeometry(size, g0.levels, g0.wavelet, g0.p, g0.max_width, g0.scale, g0.band, g0.row,
                        g0.col, g0.width, np.zeros(len(g0.scale)))
    coarse = size // 2**g0.levels
    w = bandlet_forward(x, g0)
    b = bandlet_forward(x, g)
    w[:coarse, :coarse] = b[:coarse, :coarse] = 0
    assert (np.abs(b) > 1e-6).sum() * 3 < (np.abs(w) > 1e-6).sum()


def test_selected_geometry_minimizes_the_penalized_cost():
    rng = np.random.default_rng(7)
    size, sigma, lam = 32, 0.05, 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    x = (yy > 10 + 0.4 * xx).astype(float) * 0.6 + 0.2
    y = x + sigma * rng.standard_normal(x.shape)
    t = 3 * sigma
    g = select_geometry(y, sigma, lam=lam, min_width=4)[0]
    best = geometry_cost(y, g, t, lam)
    assert g.n_directions >= 1
    assert best < geometry_cost(y, BandletGeometry.wavelet_only(size), t, lam)
    # Any other geometry of the same dictionary (directions from Θ_L, widths ≥ min_width) costs more.
    for seed in range(5):
        r = random_geometry(size, np.random.default_rng(seed), min_width=4)
        k = np.array([rng.integers(len(direction_set(w))) for w in r.width])
        ang = np.array([direction_set(w)[kk] for w, kk in zip(r.width, k)])
        ang[rng.random(len(ang)) < 0.3] = np.nan
        r = BandletGeometry(size, r.levels, r.wavelet, r.p, r.max_width, r.scale, r.band, r.row,
                            r.col, r.width, ang)
        assert best <= geometry_cost(y, r, t, lam) + 1e-12


def test_denoise_is_threshold_in_the_selected_basis():
    rng = np.random.default_rng(8)
    size, sigma = 32, 0.1
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.where(yy > 12 + 0.3 * xx, 0.8, 0.2) + 0.05 * np.sin(xx / 5)
    y = np.stack([x, x[::-1]]) + sigma * rng.standard_normal((2, size, size))
    out = bandlet_denoise(y, sigma)
    geoms = select_geometry(y, sigma)
    coarse = size // 2 ** geoms[0].levels
    for i in range(2):
        b = bandlet_forward(y[i], geoms[i])
        keep = np.abs(b) > 3 * sigma
        keep[:coarse, :coarse] = True
        np.testing.assert_allclose(out[i], bandlet_inverse(b * keep, geoms[i]), atol=1e-12)
    # Chunking does not change the result; a single image gives its row of the batch.
    np.testing.assert_allclose(bandlet_denoise(y, sigma, chunk=1), out, atol=1e-12)
    np.testing.assert_allclose(bandlet_denoise(y[1], sigma), out[1], atol=1e-12)


def test_bad_inputs():
    x = np.zeros((32, 32))
    with pytest.raises(ValueError, match="square"):
        bandlet_denoise(np.zeros((32, 16)), 0.1)
    with pytest.raises(ValueError):
        bandlet_denoise(x, 0.1, p=0)
    with pytest.raises(ValueError):
        bandlet_denoise(x, 0.1, lam=-1.0)
    with pytest.raises(ValueError):
        bandlet_denoise(x, 0.1, wavelet="bior4.4")
    g = BandletGeometry.wavelet_only(32)
    with pytest.raises(ValueError, match="tile"):
        BandletGeometry(32, g.levels, g.wavelet, g.p, g.max_width, g.scale[1:], g.band[1:],
                        g.row[1:], g.col[1:], g.width[1:], g.angle[1:])
    with pytest.raises(ValueError):
        bandlet_forward(np.zeros((16, 16)), g)
    with pytest.raises(TypeError):
        bandlet_forward(x, "not a geometry")
