"""What an image class hands the harness: deterministic train subsets and a test set.

An image-class plugin registers a :class:`gahb_bench.ImageClass` whose ``build(image_size,
**params)`` returns an :class:`ImageDataset`. Two ready bases cover most classes:

* :class:`ImageDataset` — the bare contract: override :meth:`ImageDataset.train_subset` and
  :meth:`ImageDataset.test_set`.
* :class:`PoolDataset` — a finite collection (photographs, faces, prepared folders) with a fixed
  test pool: override :meth:`PoolDataset.pools` and :meth:`PoolDataset.read`.
* :class:`GenerativeDataset` — an unlimited generator. Override :meth:`GenerativeDataset.sample`;
  every split and subset then draws from its own independent random stream, so subsets are
  disjoint with probability one and the same seed always gives the same arrays.
* :class:`ManifoldDataset` — a generator driven by latent parameters, with a tangent space.

Conventions (DESIGN.md): images are float32, shape (N, C, H, W), on the [0, 1] scale (a class
may leave that range, e.g. unclipped Gaussian fields, and says so), σ on the same scale.

Optional declarations, which metrics look for and skip (with a recorded reason) when absent:

``optimal_denoiser(y, sigma)``
    the exact MMSE denoiser f*(y) = E[x | y] for noise N(0, σ² Id), arrays (B, C, H, W).
``optimal_mse(sigma)``
    the exact MSE*(σ) = E‖x − f*(y)‖² / d per pixel.
``optimal_jacobian(y, sigma)``
    the Jacobian ∇f*(y) = σ⁻² Cov[x | y] of the optimum, (B, D, D) with D = C·H·W.
``optimal_psnr_slope()``
    the slope of the optimal output-vs-input PSNR curve in its power-law range (C^α images:
    α/(α+1); stationary Gaussian fields: 1 − 2/γ).
``tangent_basis(latents)``
    an orthonormal basis of the tangent space of the image manifold at each image,
    shape (B, k, C, H, W) (manifold classes only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Random streams are keyed by (seed, purpose, index) so no two splits ever share draws.
_TEST_STREAM = 0
_TRAIN_STREAM = 1


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """A generator for one named stream: ``SeedSequence(seed, spawn_key=key)``.

    Streams with different keys are statistically independent (numpy's SeedSequence
    guarantees it), which is how disjoint subsets are drawn from a generative class.
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


class ImageDataset:
    """One image class at one image size.

    Subclasses set ``name``, ``channels`` and ``image_size`` and implement
    :meth:`train_subset` and :meth:`test_set`.
    """

    name: str = "images"
    channels: int = 1

    def __init__(self, image_size: int, channels: int = 1):
        if int(image_size) < 4:
            raise ValueError(f"image_size must be at least 4, got {image_size}")
        self.image_size = int(image_size)
        self.channels = int(channels)

    # -- required -------------------------------------------------------------------------
    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        """Training subset S_{subset+1} of size ``n``: (n, C, H, W) float32.

        Subsets with different ``subset`` index share no image; the same arguments always
        return the same array.
        """
        raise NotImplementedError

    def test_set(self, n: int, seed: int) -> np.ndarray:
        """``n`` test images, disjoint from every training subset: (n, C, H, W) float32."""
        raise NotImplementedError

    # -- capacity and declarations ----------------------------------------------------------
    def max_train(self) -> int | None:
        """Largest N for which two disjoint subsets exist (None: unlimited)."""
        return None

    def declares(self) -> dict[str, Any]:
        """What the class knows about itself, shown by ``gahb list image-classes``.

        Keys used by the harness: ``optimum`` ("exact", "monte-carlo" or absent),
        ``tangent`` (bool), ``dimension`` (manifold dimension), ``alpha`` (regularity).
        """
        out: dict[str, Any] = {}
        if self.has("optimal_denoiser"):
            out["optimum"] = "exact" if self.has("optimal_mse") else "denoiser"
        if self.has("tangent_basis"):
            out["tangent"] = True
        return out

    def fingerprint(self) -> dict[str, Any]:
        """What determines the images beyond the class's params (e.g. when and from what a
        prepared dataset was made); part of every checkpoint key and of the provenance."""
        return {}

    def has(self, capability: str) -> bool:
        """True when the class provides ``capability`` (a method name above)."""
        return callable(getattr(self, capability, None))

    def _check_n(self, n: int) -> int:
        n = int(n)
        if n < 1:
            raise ValueError(f"{self.name}: the number of images must be at least 1, got {n}")
        return n


class PoolDataset(ImageDataset):
    """A finite collection of images addressed by integer ids, with a fixed test pool.

    The training ids are permuted by the run seed and dealt alternately into two pools; subset
    S_k of size N is the first N ids of pool k, so S1 ∩ S2 = ∅ and S_k(N) ⊂ S_k(N′) for N < N′.
    The test set of size n is the first n ids of a seeded permutation of the test pool.
    Subclasses implement :meth:`pools` and :meth:`read`.
    """

    def pools(self) -> tuple[np.ndarray, np.ndarray]:
        """(training ids, test ids): disjoint integer arrays, fixed for the dataset."""
        raise NotImplementedError

    def read(self, ids: np.ndarray) -> np.ndarray:
        """The images with these ids, (len(ids), C, H, W) float32."""
        raise NotImplementedError

    def max_train(self) -> int:
        return len(self.pools()[0]) // 2

    def subset_indices(self, n: int, subset: int, seed: int) -> np.ndarray:
        """Ids of training subset ``subset`` ∈ {0, 1} of size ``n``."""
        n = self._check_n(n)
        if subset not in (0, 1):
            raise ValueError(f"{self.name}: subset must be 0 or 1 (two disjoint subsets), got {subset}")
        train = self.pools()[0]
        if n > len(train) // 2:
            raise ValueError(f"{self.name}: N={n} exceeds the {len(train) // 2} images per subset available "
                             f"at image_size={self.image_size}")
        return train[stream_rng(seed, _TRAIN_STREAM).permutation(len(train))[subset::2][:n]]

    def test_indices(self, n: int, seed: int) -> np.ndarray:
        """Ids of the first ``n`` test images in the order drawn from ``seed``."""
        n = self._check_n(n)
        test = self.pools()[1]
        if n > len(test):
            raise ValueError(f"{self.name}: {n} test images requested, the test pool has {len(test)} "
                             f"at image_size={self.image_size}")
        return test[stream_rng(seed, _TEST_STREAM).permutation(len(test))[:n]]

    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        return self.read(self.subset_indices(n, subset, seed))

    def test_set(self, n: int, seed: int) -> np.ndarray:
        return self.read(self.test_indices(n, seed))


class GenerativeDataset(ImageDataset):
    """An image class defined by a sampler; subclasses implement :meth:`sample`."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent images, (n, C, H, W) float32, using only ``rng``."""
        raise NotImplementedError

    def train_subset(self, n: int, subset: int, seed: int) -> np.ndarray:
        n = self._check_n(n)
        return self.sample(n, stream_rng(seed, _TRAIN_STREAM, subset)).astype(np.float32, copy=False)

    def test_set(self, n: int, seed: int) -> np.ndarray:
        n = self._check_n(n)
        return self.sample(n, stream_rng(seed, _TEST_STREAM)).astype(np.float32, copy=False)


class ManifoldDataset(GenerativeDataset):
    """Images x = g(θ) rendered from latent parameters θ ∈ R^k: a k-dimensional manifold.

    Subclasses set ``latent_dim`` and implement :meth:`sample_latents`, :meth:`render` and
    :meth:`tangent_basis`. The tangent space at x = g(θ) is the span of ∂g/∂θ_i.
    """

    latent_dim: int = 0

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` latent vectors θ, shape (n, latent_dim), float64."""
        raise NotImplementedError

    def render(self, latents: np.ndarray) -> np.ndarray:
        """The images g(θ), (n, C, H, W) float32."""
        raise NotImplementedError

    def tangent_basis(self, latents: np.ndarray) -> np.ndarray:
        """Orthonormal basis of span{∂g/∂θ_i}, shape (n, latent_dim, C, H, W), float64."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.render(self.sample_latents(n, rng))

    def test_latents(self, n: int, seed: int) -> np.ndarray:
        """The latents of :meth:`test_set` (same seed → the same images)."""
        return self.sample_latents(self._check_n(n), stream_rng(seed, _TEST_STREAM))

    def test_set(self, n: int, seed: int) -> np.ndarray:
        return self.render(self.test_latents(n, seed)).astype(np.float32, copy=False)

    def declares(self) -> dict[str, Any]:
        out = super().declares()
        out["dimension"] = self.latent_dim
        return out
