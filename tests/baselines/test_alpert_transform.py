"""The orthonormal Alpert transform on irregular positions."""

import numpy as np
import pytest

from gahb_bench.baselines.alpert import AlpertTransform, alpert_forward, alpert_inverse, alpert_matrix


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 25, 100, 129])
@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_orthonormal_and_vanishing_moments(n, p):
    rng = np.random.default_rng(n * 10 + p)
    t = np.sort(rng.uniform(-3, 7, n))
    a = alpert_matrix(t, p)
    np.testing.assert_allclose(a @ a.T, np.eye(n), atol=1e-12)
    # Every wavelet (rows after the min(p, n) root scaling functions) annihilates polynomials of
    # degree < p sampled at the irregular positions...
    m = min(p, n)
    vander = np.vander(t, p, increasing=True)
    if n > m:
        assert np.abs(a[m:] @ vander).max() < 1e-10 * np.abs(vander).max()
    # ...but not degree p (the moment count is exact, not larger), when there is room for it.
    if n >= 4 * p:
        assert np.abs(a[m:] @ t**p).max() > 1e-3


def test_forward_inverse_and_polynomial_compression():
    rng = np.random.default_rng(0)
    t = np.sort(rng.random(50))
    x = 1.0 - 2.0 * t + 0.5 * t**2
    c = alpert_forward(x, t, p=3)
    assert np.abs(c[3:]).max() < 1e-12            # a quadratic is carried by the 3 root coefficients
    np.testing.assert_allclose(np.linalg.norm(c), np.linalg.norm(x), rtol=1e-13)
    np.testing.assert_allclose(alpert_inverse(c, t, p=3), x, atol=1e-13)
    c2 = alpert_forward(x, t, p=2)
    assert np.abs(c2[2:]).max() > 1e-3            # p = 2 does not annihilate t²


def test_p1_is_the_haar_basis():
    n = 8
    a = alpert_matrix(np.linspace(0, 1, n) ** 2, 1)  # positions do not matter for Haar
    haar = np.zeros((n, n))
    haar[0] = 1 / np.sqrt(8)
    haar[1] = np.r_[np.ones(4), -np.ones(4)] / np.sqrt(8)
    haar[2, :4] = haar[3, 4:] = np.r_[1, 1, -1, -1] / 2
    for k in range(4):
        haar[4 + k, 2 * k:2 * k + 2] = np.r_[1, -1] / np.sqrt(2)
    np.testing.assert_allclose(a, haar, atol=1e-14)


def test_ties_stay_orthonormal_with_vanishing_moments():
    t = np.repeat(np.arange(5.0), 5)  # only 5 distinct positions
    a = alpert_matrix(t, 3)
    np.testing.assert_allclose(a @ a.T, np.eye(25), atol=1e-12)
    assert np.abs(a[3:] @ np.vander(t, 3, increasing=True)).max() < 1e-10


def test_batched_position_sets_and_index_selection():
    rng = np.random.default_rng(3)
    pos = np.sort(rng.random((4, 21)), axis=1)
    tr = AlpertTransform(pos, p=2)
    x = rng.standard_normal((6, 4, 21))
    c = tr.forward(x)
    for d in range(4):
        np.testing.assert_allclose(c[:, d], alpert_forward(x[:, d], pos[d], p=2), atol=1e-13)
    np.testing.assert_allclose(tr.inverse(c), x, atol=1e-13)
    idx = np.array([3, 0, 2, 2, 1])
    rows = rng.standard_normal((5, 21))
    ci = tr.forward(rows, index=idx)
    for k, d in enumerate(idx):
        np.testing.assert_allclose(ci[k], alpert_forward(rows[k], pos[d], p=2), atol=1e-13)
    np.testing.assert_allclose(tr.inverse(ci, index=idx), rows, atol=1e-13)


def test_bad_inputs():
    with pytest.raises(ValueError, match="sorted"):
        AlpertTransform(np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError):
        AlpertTransform(np.arange(4.0), p=0)
    with pytest.raises(ValueError):
        AlpertTransform(np.array([0.0, np.nan]))
    tr = AlpertTransform(np.arange(4.0))
    with pytest.raises(ValueError):
        tr.forward(np.zeros(5))
    with pytest.raises(ValueError):
        AlpertTransform(np.sort(np.random.default_rng(0).random((2, 4)))).forward(np.zeros((3, 4)))
