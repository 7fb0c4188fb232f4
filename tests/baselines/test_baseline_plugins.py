"""The wavelet and bandlet estimators as registered baselines: batch layout and values."""

import numpy as np
import pytest

from gahb_bench.baselines.bandlets import bandlet_denoise
from gahb_bench.baselines.wavelet import wavelet_denoise
from gahb_bench.registry import get_registry


@pytest.mark.parametrize("name, reference, kwargs", [
    ("wavelet-hard", wavelet_denoise, {"mode": "hard"}),
    ("wavelet-soft", wavelet_denoise, {"mode": "soft"}),
    ("bandlets", bandlet_denoise, {}),
])
def test_registered_baseline_matches_the_pure_function(name, reference, kwargs):
    baseline = get_registry().baseline(name)
    rng = np.random.default_rng(0)
    noisy = rng.uniform(size=(3, 2, 16, 16)).astype(np.float32)
    out = baseline.denoise(noisy, 0.1, **baseline.params)
    assert out.shape == noisy.shape
    expected = reference(noisy.reshape(6, 16, 16).astype(np.float64), 0.1, **kwargs)
    np.testing.assert_allclose(out.reshape(6, 16, 16), expected, atol=1e-12)
    assert not np.allclose(out, noisy)  # it does threshold something
