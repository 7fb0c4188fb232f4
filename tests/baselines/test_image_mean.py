"""The trivial ``image-mean`` control."""

import numpy as np
import pytest

from gahb_bench.baselines.image_mean import image_mean_denoise
from gahb_bench.registry import get_registry


def test_each_image_and_channel_becomes_its_mean():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    out = image_mean_denoise(x, 0.1)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[1, 2], x[1, 2].mean())
    np.testing.assert_allclose(get_registry().baseline("image-mean").denoise(x, 0.3), out)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        image_mean_denoise(np.zeros(3))


def test_its_error_is_the_image_variance_plus_sigma2_over_d():
    rng = np.random.default_rng(0)
    x = rng.random((4000, 1, 8, 8))
    sigma = 0.5
    y = x + sigma * rng.standard_normal(x.shape)
    mse = ((image_mean_denoise(y) - x) ** 2).mean()
    expected = x.var(axis=(-2, -1)).mean() + sigma**2 / 64
    assert mse == pytest.approx(expected, rel=0.02)
