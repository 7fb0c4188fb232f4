"""Photographs that ship with scikit-image: grey patches, and the small LFW face set.

``photographs``
    Non-overlapping ``image_size``² patches cut on a grid from the natural photographs bundled
    with scikit-image (no download), converted to grey (mean of RGB) on [0, 1], optionally
    rescaled first by ``scale``; exact repeats (flat sky, blank page) are kept once. Train and test are split BY SOURCE IMAGE: the test set comes only
    from :data:`TEST_SOURCES`, so no test patch shares a pixel with a training patch. The
    training patches are shuffled by the seed and dealt alternately into two pools; subset S_k of
    size N is the first N patches of pool k, so S1 ∩ S2 = ∅ and S_k(N) ⊂ S_k(N') for N < N'.
``faces``
    The 200 LFW faces (25×25) of ``skimage.data.lfw_subset``, resized to ``image_size``; a
    miniature of the paper's CelebA setting. The last :data:`FACE_TEST` faces are the test set.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import ImageDataset

#: scikit-image's bundled natural photographs (``cat`` is ``chelsea`` again, so it is left out).
TRAIN_SOURCES = (
    "astronaut", "brick", "chelsea", "clock", "coins", "grass", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell",
)
#: Held-out source images: every test patch comes from these and only these.
TEST_SOURCES = ("camera", "coffee", "gravel")
FACE_TEST = 50


@lru_cache(maxsize=None)
def source_image(name: str) -> np.ndarray:
    """One bundled photograph as grey float64 in [0, 1], shape (H, W)."""
    from skimage import data, util

    image = util.img_as_float64(getattr(data, name)())
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    return image


def grid_patches(image: np.ndarray, size: int) -> np.ndarray:
    """All non-overlapping size×size patches of ``image`` on a grid from the top-left corner.

    Returns (n_rows·n_cols, size, size); a border narrower than ``size`` is dropped.
    """
    rows, cols = image.shape[0] // size, image.shape[1] // size
    cropped = image[: rows * size, : cols * size]
    return cropped.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def unique_images(images: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """``images`` without exact repeats (first kept, order preserved) and without any image
    equal to one of ``exclude``. Photographs have repeated patches (saturated sky, blank page),
    which would otherwise land in both S1 and S2."""
    seen = set() if exclude is None else {img.tobytes() for img in exclude}
    keep = []
    for i, img in enumerate(images):
        key = img.tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return images[keep]


@lru_cache(maxsize=8)
def _patch_pools(size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(train pool, test pool) of distinct patches; no test patch equals a training patch."""
    from skimage.transform import rescale

    def pool(sources: tuple[str, ...]) -> np.ndarray:
        pools = []
        for name in sources:
            image = source_image(name)
            if scale != 1.0:
                image = np.clip(rescale(image, scale, anti_aliasing=True, order=3), 0.0, 1.0)
            pools.append(grid_patches(image, size))
        return np.concatenate(pools).astype(np.float32)[:, None]

    train = unique_images(pool(TRAIN_SOURCES))
    test = unique_images(pool(TEST_SOURCES), exclude=train)
    train.setflags(write=False)
    test.setflags(write=False)
    return train, test


def _take(pool: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pool[indices])


class PhotographsDataset(ImageDataset):
    """Grey patches of scikit-image's photographs, split by source image.

    Parameters
    ----------
    image_size : patch side in pixels.
    scale : resize factor applied to each source photograph before cutting patches
        (cubic, anti-aliased); smaller values put more of the scene in a patch.
    """

    name = "photographs"

    def __init__(self, image_size: int, scale: float = 1.0):
        super().__init__(image_size)
        if not 0.05 <= float(scale) <= 4.0:
            raise ValueError(f"photographs: scale must be in [0.05, 4], got {scale}")
        self.scale = float(scale)

    def _train_pool(self) -> np.ndarray:
        return _patch_pools(self.image_size, self.scale)[0]

    def _test_pool(self) -> np.ndarray:
        return _patch_pools(self.image_size, self.scale)[1]

    def max_train(self) -> int:
        return len(self._train_pool()) // 2

    def subset_indices(self, n: int, subset: int, seed: int) -> np.ndarray:
        """Indices into the training pool of subset ``subset`` ∈ {0, 1} of size ``n``."""
        n = self._check_n(n)
        if subset not in (0, 1):
            raise ValueError(f"{self.name}: subset must be 0 or 1 (two disjoint subsets), got {subset}")
        if n > self.max_train():
            raise ValueError(
                f"{self.name}: N={n} exceeds the {self.max_train()} patches per subset available at "
                f"image_size={self.image_size}, scale={self.scale}"
            )
        order = np.random.default_rng([int(seed), 1]).permutation(len(self._train_pool()))
        return order[subset::2][:n]

    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        return _take(self._train_pool(), self.subset_indices(n, subset, seed))

    def test_set(self, n: int, seed: int) -> np.ndarray:
        n = self._check_n(n)
        pool = self._test_pool()
        if n > len(pool):
            raise ValueError(f"{self.name}: {n} test images requested, {len(pool)} available at this size")
        return _take(pool, np.random.default_rng([int(seed), 0]).permutation(len(pool))[:n])

    def declares(self) -> dict:
        return {"train_sources": len(TRAIN_SOURCES), "test_sources": len(TEST_SOURCES),
                "max_train": self.max_train()}


@lru_cache(maxsize=8)
def _faces(size: int) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    faces = data.lfw_subset()
    if size != faces.shape[-1]:
        faces = np.stack([resize(f, (size, size), anti_aliasing=True, order=3) for f in faces])
    out = np.clip(faces, 0.0, 1.0).astype(np.float32)[:, None]
    out.setflags(write=False)
    return out


class FacesDataset(ImageDataset):
    """scikit-image's 200 LFW faces resized to ``image_size``; the last 50 are the test set."""

    name = "faces"

    def _pools(self) -> tuple[np.ndarray, np.ndarray]:
        faces = _faces(self.image_size)
        return faces[:-FACE_TEST], faces[-FACE_TEST:]

    def max_train(self) -> int:
        return len(self._pools()[0]) // 2

    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        n = self._check_n(n)
        train, _ = self._pools()
        if subset not in (0, 1) or n > self.max_train():
            raise ValueError(f"faces: need subset in (0, 1) and N <= {self.max_train()}, got subset={subset}, N={n}")
        order = np.random.default_rng([int(seed), 1]).permutation(len(train))
        return _take(train, order[subset::2][:n])

    def test_set(self, n: int, seed: int) -> np.ndarray:
        n = self._check_n(n)
        _, test = self._pools()
        if n > len(test):
            raise ValueError(f"faces: {n} test images requested, {len(test)} available")
        return _take(test, np.random.default_rng([int(seed), 0]).permutation(len(test))[:n])


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="photographs",
        build=PhotographsDataset,
        params={"scale": 1.0},
        description="Grey patches of scikit-image's photographs; train/test split by source image.",
    ))
    register(ImageClass(
        name="faces",
        build=FacesDataset,
        params={},
        description="scikit-image's 200 LFW faces (grey) resized; 150 train, 50 test.",
    ))
