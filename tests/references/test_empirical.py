"""The empirical optimum f_N: a direct float64 computation, its limits, and its stability."""

import numpy as np
import pytest

from gahb_bench.references.empirical import empirical_denoise


def _direct(train, noisy, sigma):
    d2 = ((noisy.reshape(len(noisy), 1, -1) - train.reshape(1, len(train), -1)) ** 2).sum(-1)
    w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * sigma**2))
    w /= w.sum(1, keepdims=True)
    return (w @ train.reshape(len(train), -1)).reshape(noisy.shape)


@pytest.mark.parametrize("sigma", [0.02, 0.2, 1.0, 5.0])
def test_agrees_with_a_direct_float64_computation(sigma):
    rng = np.random.default_rng(0)
    train, noisy = rng.random((11, 1, 3, 3)), rng.random((5, 1, 3, 3))
    np.testing.assert_allclose(empirical_denoise(train, noisy, sigma, chunk=4), _direct(train, noisy, sigma),
                               atol=1e-12)


def test_limits():
    rng = np.random.default_rng(1)
    train = rng.random((6, 1, 8, 8))
    # N = 1: whatever the input, the single training image.
    one = empirical_denoise(train[:1], rng.random((3, 1, 8, 8)), 0.1)
    np.testing.assert_allclose(one, np.repeat(train[:1], 3, axis=0), atol=1e-12)
    # Small σ: the nearest training image, with no 0/0 even where every weight underflows.
    noisy = train[[4, 2]] + 0.01 * rng.standard_normal((2, 1, 8, 8))
    np.testing.assert_allclose(empirical_denoise(train, noisy, 1e-3), train[[4, 2]], atol=1e-12)
    # Large σ: the training mean.
    np.testing.assert_allclose(empirical_denoise(train, noisy, 1e4), np.repeat(train.mean(0, keepdims=True), 2, 0),
                               atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        empirical_denoise(train, noisy, 0.0)


@pytest.mark.parametrize("float64_pixels", [1 << 27, 0])
def test_the_fitted_state_gives_the_direct_result_kept_in_float64_or_not(monkeypatch, float64_pixels):
    from gahb_bench.references import empirical

    monkeypatch.setattr(empirical, "FLOAT64_PIXELS", float64_pixels)
    rng = np.random.default_rng(2)
    train, noisy = rng.random((13, 1, 4, 4)).astype(np.float32), rng.random((5, 1, 4, 4))
    state = empirical.fit_empirical(train, chunk=4)
    assert (state.rows is None) == (float64_pixels == 0)
    np.testing.assert_allclose(empirical.denoise_fitted(state, noisy, 0.3),
                               _direct(train.astype(np.float64), noisy, 0.3), atol=1e-12)
