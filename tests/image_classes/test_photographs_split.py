"""Photographs: disjoint subsets, test split by source image, determinism."""

import numpy as np
import pytest

from gahb_bench.image_classes.photographs import (N_FACES, TEST_SOURCES, TRAIN_SOURCES, FacesDataset,
                                                  PhotographsDataset, grid_patches, textured, unique_images)


@pytest.fixture(scope="module")
def photos():
    return PhotographsDataset(16)


def _rows(images):
    return {img.tobytes() for img in images}


def test_subsets_are_disjoint_and_nested(photos):
    s1, s2 = photos.subset_indices(500, 0, seed=3), photos.subset_indices(500, 1, seed=3)
    assert len(set(s1)) == len(set(s2)) == 500 and not set(s1) & set(s2)
    assert not _rows(photos.train_subset(500, 0, 3)) & _rows(photos.train_subset(500, 1, 3))
    np.testing.assert_array_equal(photos.subset_indices(10, 0, 3), s1[:10])


def test_train_and_test_share_no_source_image(photos):
    assert not set(TRAIN_SOURCES) & set(TEST_SOURCES)
    train_ids, test_ids = photos.pools()
    test = photos.test_set(len(test_ids), seed=0)
    # Each test patch is a patch of a test source and of no training patch.
    assert not _rows(test) & _rows(photos.read(train_ids))
    from gahb_bench.image_classes.photographs import source_image

    camera = textured(grid_patches(source_image("camera"), 16).astype(np.float32)[:, None], photos.min_std)
    # Nearly all of camera's textured patches are test patches (a few lie within 40 dB of a
    # training patch and are dropped).
    assert len(_rows(camera) & _rows(test)) >= 0.95 * len(_rows(camera))


def test_no_flat_patches_and_no_close_train_test_pairs(photos):
    train_ids, test_ids = photos.pools()
    train, test = photos.read(train_ids).reshape(len(train_ids), -1), photos.read(test_ids).reshape(len(test_ids), -1)
    assert train.std(axis=1).min() >= 0.01 and test.std(axis=1).min() >= 0.01
    # No test patch within 40 dB (MSE 1e-4) of a training patch: ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b.
    d2 = (test**2).sum(1)[:, None] + (train**2).sum(1)[None] - 2 * test @ train.T
    assert d2.min() / train.shape[1] > 1e-4


def test_same_seed_same_arrays_other_seed_other_arrays(photos):
    np.testing.assert_array_equal(photos.train_subset(64, 0, 7), PhotographsDataset(16).train_subset(64, 0, 7))
    np.testing.assert_array_equal(photos.test_set(32, 7), photos.test_set(32, 7))
    assert not np.array_equal(photos.train_subset(64, 0, 7), photos.train_subset(64, 0, 8))


def test_shapes_range_and_limits(photos):
    x = photos.train_subset(8, 0, 0)
    assert x.shape == (8, 1, 16, 16) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(ValueError, match="exceeds"):
        photos.train_subset(photos.max_train() + 1, 0, 0)
    with pytest.raises(ValueError, match="subset"):
        photos.train_subset(4, 2, 0)


def test_grid_patches_tiles_without_overlap():
    image = np.arange(10 * 7, dtype=float).reshape(10, 7)
    patches = grid_patches(image, 3)
    assert patches.shape == (6, 3, 3)
    np.testing.assert_array_equal(patches[1], image[0:3, 3:6])
    assert len(np.unique(patches)) == patches.size


def test_unique_images_drops_repeats_and_excluded():
    a, b, c = (np.full((1, 2, 2), v, np.float32) for v in (0.0, 0.5, 1.0))
    out = unique_images(np.stack([a, b, a, c, b]), exclude=np.stack([c]))
    assert [float(x[0, 0, 0]) for x in out] == [0.0, 0.5]


def test_faces_are_the_100_faces_and_split():
    from skimage import data

    lfw = data.lfw_subset()
    faces = FacesDataset(25)
    everything = faces.read(np.arange(N_FACES))[:, 0]
    np.testing.assert_allclose(everything, lfw[:N_FACES], atol=1e-6)  # not the 100 non-face crops
    s1, s2, test = faces.train_subset(40, 0, 0), faces.train_subset(40, 1, 0), faces.test_set(20, 0)
    assert not _rows(s1) & _rows(s2) and not (_rows(s1) | _rows(s2)) & _rows(test)
    assert s1.shape == (40, 1, 25, 25) and faces.max_train() == 40
