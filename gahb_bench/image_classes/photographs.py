"""Photographs that ship with scikit-image: grey patches, and the small LFW face set.

``photographs``
    Non-overlapping ``image_size``² patches cut on a grid from the natural photographs bundled
    with scikit-image (no download), converted to grey (mean of RGB) on [0, 1], optionally
    rescaled first by ``scale``. Flat patches (pixel standard deviation below ``min_std``:
    saturated sky, blank page) are dropped: they are trivially denoised and nearly identical
    across images. Near-copies are then removed from the whole collection, before any split
    (:func:`near_copy_free`: a patch within MSE ``NEAR_COPY_MSE`` = 1e-4, i.e. 40 dB, of a patch
    kept before it is dropped), as the paper removes near-duplicates from CelebA before drawing
    its subsets. Finally, each source's patches are dealt at random (``split_seed``) into a test
    pool (a fraction ``test_fraction`` of them) and a training pool, so the test set is drawn
    from the same distribution as the training subsets and shares no pixel with any of them.
``faces``
    The 100 LFW faces of ``skimage.data.lfw_subset`` (its first 100 images; the other 100 are
    non-face crops), 25×25, resized to ``image_size``; a miniature of the paper's CelebA setting.
    :data:`FACE_TEST` faces, drawn at random by ``split_seed``, are the test set.

Both are :class:`~gahb_bench.image_classes.base.PoolDataset`: two disjoint, nested training
subsets dealt from the training pool by the run seed, and a fixed test pool.

Why a random split and not a split by source image: a source is a scene (a cat, a page of
text, a gravel bed), and held-out scenes are a different distribution. A training-free
denoiser (wavelet thresholding) then already scores a "generalization gap" of 1.8 dB (16 px)
to 2.5 dB (32 px) between the training subsets and held-out scenes, which no network could
close. With the random split its gap is within sampling error of 0 (a test checks it).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import PoolDataset, stream_rng

#: scikit-image's bundled natural photographs (``cat`` is ``chelsea`` again, so it is left out).
SOURCES = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell",
)
#: A patch within this mean squared distance (per pixel) of a patch kept before it is dropped.
NEAR_COPY_MSE = 1e-4
#: ``skimage.data.lfw_subset()`` holds 100 faces, then 100 non-face crops.
N_FACES = 100
FACE_TEST = 20
#: Key of the split stream (the run seed's streams use keys 0 and 1).
_SPLIT_STREAM = 2


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


def textured(images: np.ndarray, min_std: float) -> np.ndarray:
    """Boolean mask of the images whose pixel standard deviation is at least ``min_std``."""
    return images.reshape(len(images), -1).std(axis=1) >= min_std


def near_copy_free(images: np.ndarray, min_mse: float = NEAR_COPY_MSE, block: int = 512) -> np.ndarray:
    """Indices of the images kept when near-copies are removed greedily in index order.

    Image i is kept iff no KEPT image j < i has ‖x_i − x_j‖² / d ≤ ``min_mse`` (d pixels): the
    first image of every group of near-copies stays, exact repeats included.

    The search is exact and sub-quadratic in practice: since (mean(a) − mean(b))² ≤
    ‖a − b‖² / d (Jensen), only pairs whose means differ by at most √min_mse can be near-copies,
    so images are sorted by mean and each block of ``block`` of them is compared with the window
    of means that can match (memory block × window). Candidates come from
    ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b in float32; each one within twice the threshold is then decided
    in float64 from the difference itself, so float32 rounding never decides a pair.
    """
    flat64 = images.reshape(len(images), -1).astype(np.float64)
    flat = flat64.astype(np.float32)
    n, d = flat.shape
    sq = (flat64**2).sum(axis=1).astype(np.float32)
    means = flat64.mean(axis=1)
    order = np.argsort(means, kind="stable")
    sorted_means = means[order]
    radius = np.sqrt(min_mse) * (1 + 1e-9)
    pairs_i, pairs_j = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for start in range(0, n, block):
        rows = order[start:start + block]
        lo = np.searchsorted(sorted_means, sorted_means[start] - radius, side="left")
        hi = np.searchsorted(sorted_means, sorted_means[start + len(rows) - 1] + radius, side="right")
        cols = order[lo:hi]
        d2 = sq[rows, None] + sq[None, cols] - 2.0 * (flat[rows] @ flat[cols].T)
        r, c = np.nonzero(d2 <= 2.0 * min_mse * d)
        i, j = rows[r], cols[c]
        earlier = j < i  # each unordered pair once, as (later, earlier) in index order
        i, j = i[earlier], j[earlier]
        close = ((flat64[i] - flat64[j]) ** 2).sum(axis=1) / d <= min_mse
        pairs_i.append(i[close])
        pairs_j.append(j[close])
    pairs_i, pairs_j = np.concatenate(pairs_i), np.concatenate(pairs_j)
    by_later = np.argsort(pairs_i, kind="stable")
    pairs_i, pairs_j = pairs_i[by_later], pairs_j[by_later]
    bounds = np.searchsorted(pairs_i, np.arange(n + 1))
    kept = np.ones(n, dtype=bool)
    for i in np.unique(pairs_i):  # in increasing order: every j < i is decided before i
        if kept[pairs_j[bounds[i]:bounds[i + 1]]].any():
            kept[i] = False
    return np.nonzero(kept)[0]


def stratified_split(groups: np.ndarray, test_fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, test ids): within each group, a random ``round(test_fraction · size)`` of its
    members go to the test pool and the rest to the training pool (both sorted)."""
    test = []
    for g in np.unique(groups):
        members = np.nonzero(groups == g)[0]
        test.append(rng.permutation(members)[:int(round(test_fraction * len(members)))])
    test_ids = np.sort(np.concatenate(test)) if test else np.empty(0, np.int64)
    train_ids = np.setdiff1d(np.arange(len(groups)), test_ids)
    return train_ids, test_ids


@lru_cache(maxsize=8)
def _patch_collection(size: int, scale: float, min_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Every kept patch of every source, and the index of its source: (patches, sources)."""
    from skimage.transform import rescale

    patches, origin = [], []
    for k, name in enumerate(SOURCES):
        image = source_image(name)
        if scale != 1.0:
            image = np.clip(rescale(image, scale, anti_aliasing=True, order=3), 0.0, 1.0)
        cut = grid_patches(image, size).astype(np.float32)
        cut = cut[textured(cut, min_std)]
        patches.append(cut)
        origin.append(np.full(len(cut), k))
    patches, origin = np.concatenate(patches)[:, None], np.concatenate(origin)
    keep = near_copy_free(patches)
    patches, origin = np.ascontiguousarray(patches[keep]), origin[keep]
    patches.setflags(write=False)
    return patches, origin


class PhotographsDataset(PoolDataset):
    """Grey patches of scikit-image's photographs, dealt at random into train and test pools.

    Parameters
    ----------
    image_size : patch side in pixels.
    scale : resize factor applied to each source photograph before cutting patches
        (cubic, anti-aliased); smaller values put more of the scene in a patch.
    min_std : patches whose pixel standard deviation is below it are dropped (flat regions).
    test_fraction : fraction of each source's patches held out as the test pool, in (0, 0.5].
    split_seed : seed of the train/test deal (not the run seed: the test pool stays fixed).
    """

    name = "photographs"

    def __init__(self, image_size: int, scale: float = 1.0, min_std: float = 0.01,
                 test_fraction: float = 0.15, split_seed: int = 0):
        super().__init__(image_size)
        if not 0.05 <= float(scale) <= 4.0:
            raise ValueError(f"photographs: scale must be in [0.05, 4], got {scale}")
        if not 0.0 <= float(min_std) < 0.5:
            raise ValueError(f"photographs: min_std must be in [0, 0.5), got {min_std}")
        if not 0.0 < float(test_fraction) <= 0.5:
            raise ValueError(f"photographs: test_fraction must be in (0, 0.5], got {test_fraction}")
        self.scale = float(scale)
        self.min_std = float(min_std)
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)
        self._pools: tuple[np.ndarray, np.ndarray] | None = None

    def _collection(self) -> tuple[np.ndarray, np.ndarray]:
        return _patch_collection(self.image_size, self.scale, self.min_std)

    def sources(self, ids: np.ndarray) -> list[str]:
        """The source photograph of each patch id."""
        return [SOURCES[k] for k in self._collection()[1][ids]]

    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pools is None:
            rng = stream_rng(self.split_seed, _SPLIT_STREAM)
            self._pools = stratified_split(self._collection()[1], self.test_fraction, rng)
        return self._pools

    def read(self, ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._collection()[0][ids])

    def declares(self) -> dict:
        train, test = self.pools()
        return {"sources": len(SOURCES), "max_train": len(train) // 2, "test_images": len(test)}


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
    """scikit-image's 100 LFW faces resized to ``image_size``; :data:`FACE_TEST` of them, drawn
    by ``split_seed``, are the test set."""

    name = "faces"

    def __init__(self, image_size: int, split_seed: int = 0):
        super().__init__(image_size)
        self.split_seed = int(split_seed)

    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        order = stream_rng(self.split_seed, _SPLIT_STREAM).permutation(N_FACES)
        return np.sort(order[FACE_TEST:]), np.sort(order[:FACE_TEST])

    def read(self, ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(_faces(self.image_size)[ids])


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="photographs",
        build=PhotographsDataset,
        params={"scale": 1.0, "min_std": 0.01, "test_fraction": 0.15, "split_seed": 0},
        description="Grey patches of scikit-image's photographs, near-copies removed, dealt at random "
                    "into train and test pools.",
    ))
    register(ImageClass(
        name="faces",
        build=FacesDataset,
        params={"split_seed": 0},
        description="scikit-image's 100 LFW faces (grey) resized; 80 train (two subsets of 40), 20 test.",
    ))
