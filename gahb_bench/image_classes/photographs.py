"""Photographs that ship with scikit-image: grey patches, and the small LFW face set.

``photographs``
    Non-overlapping ``image_size``² patches cut on a grid from the natural photographs bundled
    with scikit-image (no download), converted to grey (mean of RGB) on [0, 1], optionally
    rescaled first by ``scale``. Flat patches (pixel standard deviation below ``min_std``:
    saturated sky, blank page) are dropped: they are trivially denoised and nearly identical
    across images, so they would blur the line between training and test data; exact repeats
    are kept once, and a test patch within MSE 1e-4 (40 dB) of a training patch is dropped. Train and test are split BY SOURCE IMAGE: the test set comes only from
    :data:`TEST_SOURCES`, so no test patch shares a pixel with a training patch.
``faces``
    The 100 LFW faces of ``skimage.data.lfw_subset`` (its first 100 images; the other 100 are
    non-face crops), 25×25, resized to ``image_size``; a miniature of the paper's CelebA setting.
    The last :data:`FACE_TEST` faces are the test set.

Both are :class:`~gahb_bench.image_classes.base.PoolDataset`: two disjoint, nested training
subsets dealt from the training pool by the run seed, and a fixed test pool.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import PoolDataset

#: scikit-image's bundled natural photographs (``cat`` is ``chelsea`` again, so it is left out).
TRAIN_SOURCES = (
    "astronaut", "brick", "chelsea", "clock", "coins", "grass", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell",
)
#: Held-out source images: every test patch comes from these and only these.
TEST_SOURCES = ("camera", "coffee", "gravel")
#: Test patches within this mean squared distance of a training patch are dropped.
TEST_MIN_MSE = 1e-4
#: ``skimage.data.lfw_subset()`` holds 100 faces, then 100 non-face crops.
N_FACES = 100
FACE_TEST = 20


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
    equal to one of ``exclude``: repeated patches would otherwise land in both S1 and S2."""
    seen = set() if exclude is None else {img.tobytes() for img in exclude}
    keep = []
    for i, img in enumerate(images):
        key = img.tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return images[keep]


def far_from(images: np.ndarray, reference: np.ndarray, min_mse: float, block: int = 256) -> np.ndarray:
    """The images whose mean squared distance to every image of ``reference`` exceeds ``min_mse``.

    Distances from ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b, a block of rows at a time (memory
    block × len(reference)).
    """
    a = images.reshape(len(images), -1).astype(np.float64)
    b = reference.reshape(len(reference), -1).astype(np.float64)
    b2 = (b**2).sum(axis=1)
    keep = np.empty(len(a), dtype=bool)
    for start in range(0, len(a), block):
        rows = a[start:start + block]
        d2 = (rows**2).sum(axis=1)[:, None] + b2[None] - 2.0 * rows @ b.T
        keep[start:start + block] = d2.min(axis=1) / a.shape[1] > min_mse
    return images[keep]


def textured(images: np.ndarray, min_std: float) -> np.ndarray:
    """The images whose pixel standard deviation is at least ``min_std``."""
    return images[images.reshape(len(images), -1).std(axis=1) >= min_std]


@lru_cache(maxsize=8)
def _patch_pools(size: int, scale: float, min_std: float) -> tuple[np.ndarray, int]:
    """All kept patches, training sources first; returns (patches, number of training patches)."""
    from skimage.transform import rescale

    def pool(sources: tuple[str, ...]) -> np.ndarray:
        pools = []
        for name in sources:
            image = source_image(name)
            if scale != 1.0:
                image = np.clip(rescale(image, scale, anti_aliasing=True, order=3), 0.0, 1.0)
            pools.append(grid_patches(image, size))
        return textured(np.concatenate(pools).astype(np.float32)[:, None], min_std)

    train = unique_images(pool(TRAIN_SOURCES))
    # A test patch closer to a training patch than noise at σ = 0.01 (MSE 1e-4) is dropped.
    test = far_from(unique_images(pool(TEST_SOURCES)), train, TEST_MIN_MSE)
    patches = np.concatenate([train, test])
    patches.setflags(write=False)
    return patches, len(train)


class PhotographsDataset(PoolDataset):
    """Grey patches of scikit-image's photographs, split by source image.

    Parameters
    ----------
    image_size : patch side in pixels.
    scale : resize factor applied to each source photograph before cutting patches
        (cubic, anti-aliased); smaller values put more of the scene in a patch.
    min_std : patches whose pixel standard deviation is below it are dropped (flat regions).
    """

    name = "photographs"

    def __init__(self, image_size: int, scale: float = 1.0, min_std: float = 0.01):
        super().__init__(image_size)
        if not 0.05 <= float(scale) <= 4.0:
            raise ValueError(f"photographs: scale must be in [0.05, 4], got {scale}")
        if not 0.0 <= float(min_std) < 0.5:
            raise ValueError(f"photographs: min_std must be in [0, 0.5), got {min_std}")
        self.scale = float(scale)
        self.min_std = float(min_std)

    def _patches(self) -> tuple[np.ndarray, int]:
        return _patch_pools(self.image_size, self.scale, self.min_std)

    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        patches, n_train = self._patches()
        return np.arange(n_train), np.arange(n_train, len(patches))

    def read(self, ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._patches()[0][ids])

    def declares(self) -> dict:
        train, test = self.pools()
        return {"train_sources": len(TRAIN_SOURCES), "test_sources": len(TEST_SOURCES),
                "max_train": len(train) // 2, "test_images": len(test)}


@lru_cache(maxsize=8)
def _faces(size: int) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    faces = data.lfw_subset()[:N_FACES]
    if size != faces.shape[-1]:
        faces = np.stack([resize(f, (size, size), anti_aliasing=True, order=3) for f in faces])
    out = np.clip(faces, 0.0, 1.0).astype(np.float32)[:, None]
    out.setflags(write=False)
    return out


class FacesDataset(PoolDataset):
    """scikit-image's 100 LFW faces resized to ``image_size``; the last 20 are the test set."""

    name = "faces"

    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(N_FACES - FACE_TEST), np.arange(N_FACES - FACE_TEST, N_FACES)

    def read(self, ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(_faces(self.image_size)[ids])


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="photographs",
        build=PhotographsDataset,
        params={"scale": 1.0, "min_std": 0.01},
        description="Grey patches of scikit-image's photographs; train/test split by source image.",
    ))
    register(ImageClass(
        name="faces",
        build=FacesDataset,
        params={},
        description="scikit-image's 100 LFW faces (grey) resized; 80 train (two subsets of 40), 20 test.",
    ))
