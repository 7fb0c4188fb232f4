"""Shuffled photographs: one fixed permutation, invertible, inherited disjointness."""

import numpy as np
import pytest

from gahb_bench.image_classes.photographs import PhotographsDataset
from gahb_bench.image_classes.shuffled import (ShuffledDataset, pixel_permutation, shuffle_pixels,
                                               unshuffle_pixels)


def test_permutation_is_a_fixed_bijection():
    p = pixel_permutation(16, 3)
    assert sorted(p) == list(range(256))
    np.testing.assert_array_equal(p, pixel_permutation(16, 3))
    assert not np.array_equal(p, pixel_permutation(16, 4))
    x = np.arange(2 * 256, dtype=float).reshape(1, 2, 16, 16)
    y = shuffle_pixels(x, p)
    assert y[0, 1].ravel()[0] == x[0, 1].ravel()[p[0]]
    np.testing.assert_array_equal(unshuffle_pixels(y, p), x)


def test_same_permutation_for_every_split_and_undone_exactly():
    data = ShuffledDataset(16, permutation_seed=1)
    base = PhotographsDataset(16)
    for shuffled, plain in ((data.train_subset(20, 0, 5), base.train_subset(20, 0, 5)),
                            (data.train_subset(20, 1, 5), base.train_subset(20, 1, 5)),
                            (data.test_set(20, 5), base.test_set(20, 5))):
        np.testing.assert_array_equal(unshuffle_pixels(shuffled, data.permutation), plain)
        # A permutation preserves each image's pixel values and energy, but not its layout.
        np.testing.assert_allclose(np.sort(shuffled.reshape(20, -1)), np.sort(plain.reshape(20, -1)))
        assert not np.array_equal(shuffled, plain)
    s1, s2 = data.train_subset(100, 0, 0), data.train_subset(100, 1, 0)
    assert not {x.tobytes() for x in s1} & {x.tobytes() for x in s2}


def test_unknown_base():
    with pytest.raises(ValueError, match="base must be one of"):
        ShuffledDataset(16, base="cats")
