"""Real photographs from a prepared dataset (``gahb data prepare …``): CelebA, LSUN, any folder.

``prepared``
    The images of ``<data_root>/<dataset>.zarr`` (:mod:`gahb_bench.data.prepare`): grey, on
    [0, 1], near-duplicates removed (SCIENCE.md §2). This is the paper's CelebA setting
    (Kadkhodaie et al., ICLR 2024, §2.2): with ``dataset="celeba"`` prepared at 80×80, two
    denoisers trained on disjoint subsets of N = 1 … ~10⁵ faces.

Split. A fixed held-out test pool, independent of the run seed: the first
⌈test_fraction·n⌉ images of the permutation drawn from ``split_seed`` (so it does not follow
the source's file order, which may be grouped by folder). The rest is the training pool.
For a run seed, the training pool is shuffled by that seed and dealt alternately into two
pools; subset S_k of size N is the first N images of pool k. Hence S1 ∩ S2 = ∅, S_k(N) ⊂ S_k(N′)
for N < N′, and no test image is in any subset. ``max_train()`` = ⌊training pool / 2⌋; for
CelebA (202,599 files, fewer after duplicate removal) this is just under 10⁵ with the default
test_fraction, so the paper's largest N is reached only approximately.

Size. Images are returned at the prepared size. When ``image_size`` differs, each image is
resized (Pillow bicubic, anti-aliased, clipped to [0, 1]) from the stored images: a second
resampling, slightly softer than preparing at that size directly, which is recommended for
paper-scale results (``gahb data prepare celeba --src DIR --size 40 --name celeba40``).

The store is opened lazily: building the class never fails, and :meth:`declares` says whether
the dataset is prepared; drawing images from a missing dataset raises DataError naming the
command that prepares it.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.data import prepare, sources
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import PoolDataset, stream_rng

#: Key of the split stream (the run seed's streams use keys 0 and 1).
_SPLIT_STREAM = 2
#: Prepared arrays up to this size are read once and kept in memory; larger ones are read per call.
CACHE_BYTES = 2 << 30


class PreparedDataset(PoolDataset):
    """A prepared dataset of real photographs as an image class (see the module docstring).

    Parameters
    ----------
    image_size : side of the returned images; the stored images are resized if it differs.
    dataset : name of the prepared dataset (``<data_root>/<dataset>.zarr``).
    data_root : folder of prepared datasets (default ``$GAHB_DATA_ROOT`` or ./gahb-data).
    test_fraction : fraction of the images held out as the fixed test pool, in (0, 0.5].
    split_seed : seed of the test/train partition (not the run seed: the test pool stays fixed).
    """

    name = "prepared"

    def __init__(self, image_size: int, dataset: str = "celeba", data_root: str | os.PathLike | None = None,
                 test_fraction: float = 0.01, split_seed: int = 0):
        super().__init__(image_size)
        if not isinstance(dataset, str) or not dataset:
            raise ValueError(f"prepared: dataset must be a dataset name, got {dataset!r}")
        if not 0.0 < float(test_fraction) <= 0.5:
            raise ValueError(f"prepared: test_fraction must be in (0, 0.5], got {test_fraction}")
        self.dataset = dataset
        self.data_root = data_root
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)
        self._group = None
        self._cache: np.ndarray | None = None
        self._split: tuple[np.ndarray, np.ndarray] | None = None

    # -- the store ------------------------------------------------------------------------
    def _open(self):
        if self._group is None:
            self._group = prepare.open_prepared_group(self.dataset, self.data_root)
        return self._group

    @property
    def n_images(self) -> int:
        """Number of images in the prepared dataset."""
        return int(self._open()["images"].shape[0])

    @property
    def prepared_size(self) -> int:
        return int(self._open().attrs["size"])

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(test pool, training pool): disjoint index arrays covering the dataset."""
        if self._split is None:
            n = self.n_images
            n_test = max(1, math.ceil(self.test_fraction * n))
            if n - n_test < 2:
                raise prepare.DataError(f"prepared dataset {self.dataset!r} has {n} images: too few for a test "
                                        f"pool and two disjoint training subsets")
            order = stream_rng(self.split_seed, _SPLIT_STREAM).permutation(n)
            self._split = (order[:n_test], order[n_test:])
        return self._split

    def _read(self, indices: np.ndarray) -> np.ndarray:
        """Images at ``indices`` (any order, repeats allowed) as (n, 1, image_size, image_size) float32."""
        images = self._open()["images"]
        if self._cache is None and images.nbytes <= CACHE_BYTES:
            self._cache = np.asarray(images[:], dtype=np.float32)
        if self._cache is not None:
            out = self._cache[indices]
        else:
            unique = np.unique(indices)
            block = images.get_orthogonal_selection((unique, slice(None), slice(None)))
            out = np.asarray(block, dtype=np.float32)[np.searchsorted(unique, indices)]
        if out.shape[-1] != self.image_size:
            out = np.stack([sources.resize_square(im, self.image_size) for im in out]) if len(out) else \
                np.empty((0, self.image_size, self.image_size), np.float32)
        return np.ascontiguousarray(out[:, None], dtype=np.float32)

    # -- the contract (PoolDataset deals the subsets and the test set) ----------------------
    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        test, train = self.split()
        return train, test

    def read(self, ids: np.ndarray) -> np.ndarray:
        return self._read(ids)

    def fingerprint(self) -> dict[str, Any]:
        """The prepared data's identity: re-preparing it (``--overwrite``) changes the key."""
        attrs = self._open().attrs
        return {"created": attrs.get("created"), "src": attrs.get("src"), "size": attrs.get("size"),
                "kept": attrs.get("counts", {}).get("kept")}

    def declares(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset}
        try:
            group = self._open()
        except prepare.DataError:
            return {**out, "prepared": False, "prepare": prepare.prepare_command(self.dataset)}
        attrs = group.attrs
        return {**out, "prepared": True, "source": attrs.get("source"), "prepared_size": attrs.get("size"),
                "images": self.n_images, "test_images": len(self.split()[0]), "max_train": self.max_train(),
                "duplicates_removed": attrs.get("counts", {}).get("removed_duplicates")}


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="prepared",
        build=PreparedDataset,
        params={"dataset": "celeba", "data_root": None, "test_fraction": 0.01, "split_seed": 0},
        description="Real photographs prepared by `gahb data prepare` (CelebA, LSUN, a folder), grey, deduplicated.",
    ))
