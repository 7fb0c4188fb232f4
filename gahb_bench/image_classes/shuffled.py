"""``shuffled_photographs``: photographs (or faces) with one fixed permutation of the pixels.

x ↦ P x, with P a permutation of the H·W pixel positions drawn once from ``permutation_seed``
and applied to every train and test image alike (App. C of the paper: "shuffled faces"). The
permutation is an orthogonal map, so the optimal denoiser commutes with it,
f*_shuffled(y) = P f*(Pᵀ y), and the optimal MSE is unchanged: the class is exactly as hard
as the original for an ideal denoiser. Local, multiscale architectures lose their advantage on
it, so the drop in performance from ``photographs`` to ``shuffled_photographs`` measures how
much a denoiser relies on spatial regularity (the GAHB inductive bias).
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import ImageDataset
from gahb_bench.image_classes.photographs import FacesDataset, PhotographsDataset

BASES = {"photographs": PhotographsDataset, "faces": FacesDataset}


def pixel_permutation(image_size: int, seed: int) -> np.ndarray:
    """A permutation of range(image_size²) drawn from ``seed`` (the same on every machine)."""
    return np.random.default_rng([int(seed), 2024]).permutation(int(image_size) ** 2)


def shuffle_pixels(images: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """(N, C, H, W) → the same images with pixel k moved from position permutation[k] to k."""
    n, c, h, w = images.shape
    return np.ascontiguousarray(images.reshape(n, c, h * w)[..., permutation].reshape(n, c, h, w))


def unshuffle_pixels(images: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """The inverse of :func:`shuffle_pixels`."""
    return shuffle_pixels(images, np.argsort(permutation))


class ShuffledDataset(ImageDataset):
    """A base class of photographs whose pixels are permuted by one fixed permutation.

    Parameters
    ----------
    image_size : side in pixels.
    base : "photographs" (patches of scikit-image's photographs) or "faces" (LFW faces).
    permutation_seed : seed of the pixel permutation (fixed for all splits and subsets).
    """

    name = "shuffled_photographs"

    def __init__(self, image_size: int, base: str = "photographs", permutation_seed: int = 0):
        super().__init__(image_size)
        if base not in BASES:
            raise ValueError(f"shuffled_photographs: base must be one of {sorted(BASES)}, got {base!r}")
        self.base_name = base
        self.base = BASES[base](image_size)
        self.permutation_seed = int(permutation_seed)
        self.permutation = pixel_permutation(image_size, self.permutation_seed)

    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        return shuffle_pixels(self.base.train_subset(n, subset, seed), self.permutation)

    def test_set(self, n: int, seed: int) -> np.ndarray:
        return shuffle_pixels(self.base.test_set(n, seed), self.permutation)

    def max_train(self) -> int | None:
        return self.base.max_train()

    def declares(self) -> dict:
        return {"base": self.base_name, "permutation_seed": self.permutation_seed,
                "optimal_mse": f"equal to {self.base_name}'s (the permutation is orthogonal)"}


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="shuffled_photographs",
        build=ShuffledDataset,
        params={"base": "photographs", "permutation_seed": 0},
        description="Photographs (or faces) with one fixed, seeded permutation of the pixels (App. C).",
    ))
