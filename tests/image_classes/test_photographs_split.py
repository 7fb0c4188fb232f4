"""Photographs: near-copy-free collection, disjoint subsets, a random test split, determinism."""

import numpy as np
import pytest

from gahb_bench.image_classes.photographs import (FACE_TEST, N_FACES, SOURCES, FacesDataset, PhotographsDataset,
                                                  grid_patches, near_copy_free, stratified_split)


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


def test_test_pool_is_a_random_share_of_every_source(photos):
    train_ids, test_ids = photos.pools()
    assert not set(train_ids) & set(test_ids)
    train_sources, test_sources = photos.sources(train_ids), photos.sources(test_ids)
    for name in SOURCES:
        n_train, n_test = train_sources.count(name), test_sources.count(name)
        assert n_test == round(photos.test_fraction * (n_train + n_test)), name
    # Every source contributes to the test pool (none is held out whole, none left out).
    assert set(test_sources) == set(SOURCES)
    # The deal is random: another split seed gives another test pool of the same size.
    other = PhotographsDataset(16, split_seed=1).pools()[1]
    assert len(other) == len(test_ids) and not np.array_equal(other, test_ids)


def test_no_flat_patches_and_no_near_copies_anywhere(photos):
    train_ids, test_ids = photos.pools()
    everything = photos.read(np.concatenate([train_ids, test_ids])).reshape(len(train_ids) + len(test_ids), -1)
    assert everything.std(axis=1).min() >= 0.01
    # No two patches (train-train, train-test, test-test) within 40 dB (MSE 1e-4) of each other.
    x = everything.astype(np.float64)
    sq = (x**2).sum(1)
    for start in range(0, len(x), 2048):
        rows = x[start:start + 2048]
        d2 = sq[start:start + 2048, None] + sq[None] - 2 * rows @ x.T
        d2[np.arange(len(rows)), start + np.arange(len(rows))] = np.inf
        assert d2.min() / x.shape[1] > 1e-4


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


def test_near_copy_free_is_greedy_in_index_order():
    rng = np.random.default_rng(0)
    base = rng.random((4, 1, 4, 4))
    images = np.stack([base[0], base[1], base[0] + 0.005, base[2], base[1], base[3] + 0.02])
    # 2 is within MSE 2.5e-5 of 0 and 4 repeats 1 exactly: both dropped; 3 and 5 are new images.
    assert near_copy_free(images, min_mse=1e-4, block=2).tolist() == [0, 1, 3, 5]
    # A chain a ~ b ~ c with a not ~ c keeps a and c (b only matches a kept image).
    chain = np.stack([np.zeros((1, 2, 2)), np.full((1, 2, 2), 0.008), np.full((1, 2, 2), 0.016)])
    assert near_copy_free(chain, min_mse=1e-4).tolist() == [0, 2]


def test_near_copy_free_agrees_with_brute_force():
    rng = np.random.default_rng(1)
    base = rng.random((120, 1, 4, 4)) * rng.random((120, 1, 1, 1))  # varied means and contrasts
    copies = base[rng.integers(0, 120, 200)] + rng.normal(0, rng.choice([0.003, 0.02], 200)[:, None, None, None],
                                                          (200, 1, 4, 4))
    images = np.concatenate([base, copies])[rng.permutation(320)]
    flat = images.reshape(len(images), -1)
    kept = []
    for i in range(len(flat)):
        if all(((flat[i] - flat[j]) ** 2).mean() > 1e-4 for j in kept):
            kept.append(i)
    assert near_copy_free(images, min_mse=1e-4, block=7).tolist() == kept
    assert 120 <= len(kept) < 320


def test_stratified_split_takes_the_same_share_of_each_group():
    groups = np.repeat([0, 1, 2], [10, 40, 3])
    train, test = stratified_split(groups, 0.25, np.random.default_rng(0))
    assert sorted(np.bincount(groups[test], minlength=3)) == sorted([2, 10, 1])
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(53))


def test_faces_are_the_100_faces_and_split():
    from skimage import data

    lfw = data.lfw_subset()
    faces = FacesDataset(25)
    everything = faces.read(np.arange(N_FACES))[:, 0]
    np.testing.assert_allclose(everything, lfw[:N_FACES], atol=1e-6)  # not the 100 non-face crops
    s1, s2, test = faces.train_subset(40, 0, 0), faces.train_subset(40, 1, 0), faces.test_set(FACE_TEST, 0)
    assert not _rows(s1) & _rows(s2) and not (_rows(s1) | _rows(s2)) & _rows(test)
    assert s1.shape == (40, 1, 25, 25) and faces.max_train() == 40
    # The test faces are a seeded random draw, not the last 20 of the file.
    train_ids, test_ids = faces.pools()
    assert len(test_ids) == FACE_TEST and not np.array_equal(test_ids, np.arange(N_FACES - FACE_TEST, N_FACES))
    assert np.array_equal(FacesDataset(25, split_seed=0).pools()[1], test_ids)
