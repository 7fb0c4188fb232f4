"""What a metric receives: the trained denoiser(s), the data, its settings.

A cell-scope metric gets a :class:`MetricContext` (one model and its training subset); a
pair-scope metric gets a :class:`PairContext` (the models trained on S1 and S2 at the same
class, N and seed, and their two subsets). Metrics are pure with respect to the context: they
read, compute and return arrays; the runner writes them to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from gahb_bench.image_classes.base import ImageDataset, stream_rng


@torch.no_grad()
def apply_model(model: torch.nn.Module, noisy: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Apply ``model`` to (B, C, H, W) float32 noisy images in batches on ``device``; float32 out."""
    out = np.empty_like(noisy, dtype=np.float32)
    for start in range(0, len(noisy), batch_size):
        chunk = torch.as_tensor(noisy[start:start + batch_size], dtype=torch.float32)
        out[start:start + len(chunk)] = model(chunk.to(device)).float().cpu().numpy()
    return out


@dataclass
class _Context:
    """What every context provides: data, settings, seeded random streams, baselines."""

    dataset: ImageDataset
    data_seed: int
    settings: Mapping[str, Any]
    seed: int
    device: torch.device
    batch_size: int = 256
    progress: Callable[[int], None] | None = field(default=None, repr=False)
    registry: Any = field(default=None, repr=False)
    _test_cache: dict = field(default_factory=dict, repr=False)

    def test_set(self, n: int) -> np.ndarray:
        """The first ``n`` test images of the class for this cell's data seed."""
        if n not in self._test_cache:
            self._test_cache[n] = self.dataset.test_set(int(n), self.data_seed)
        return self._test_cache[n]

    def rng(self, *key: int) -> np.random.Generator:
        """An independent random stream for this cell, keyed by small integers."""
        return stream_rng(self.seed, *key)

    def baseline(self, name: str) -> Callable[[np.ndarray, float], np.ndarray]:
        """The registered baseline ``name`` with its default params, as ``f(noisy, sigma)``."""
        from gahb_bench.registry import get_registry

        record = (self.registry or get_registry()).baseline(name)

        def denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
            return np.asarray(record.denoise(noisy, float(sigma), **record.params), dtype=np.float64)

        return denoise


@dataclass
class MetricContext(_Context):
    """Everything one metric needs in one cell.

    ``model`` is in eval mode on ``device``. ``train_images`` is the cell's training subset;
    :meth:`test_set` gives the class's test set (the same for every cell of a data seed).
    ``settings`` are the metric's defaults merged with the preset's overrides. ``seed`` keys
    every random draw and does not depend on the architecture, so two architectures
    evaluated in the same cell see the same noise. :meth:`baseline` gives any registered
    training-free baseline as a denoiser, to measure beside the model on the same noisy images.
    """

    model: torch.nn.Module | None = None
    train_images: np.ndarray | None = None
    #: What :meth:`denoise` applies: ``model`` itself, or ``model`` under the run's optional
    #: speed-ups (:mod:`gahb_bench.acceleration`); Jacobians use ``model``.
    forward: torch.nn.Module | None = field(default=None, repr=False)

    _fitted: dict = field(default_factory=dict, repr=False)

    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        """Apply the model to (B, C, H, W) float32 noisy images, in batches; returns float32."""
        return apply_model(self.forward or self.model, noisy, self.device, self.batch_size)

    def reference(self, name: str, **params: Any) -> Callable[[np.ndarray, float], np.ndarray]:
        """The registered reference denoiser ``name`` fitted on this cell's training subset
        (its default params updated by ``params``), as ``f(noisy, sigma)`` in float64. Fitted
        once per cell and params, however many metrics ask."""
        from gahb_bench.registry import get_registry

        record = (self.registry or get_registry()).reference(name)
        merged = {**record.params, **params}
        key = (name, tuple(sorted(merged.items())))
        if key not in self._fitted:
            self._fitted[key] = record.fit(self.train_images, **merged)
        state = self._fitted[key]

        def denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
            return np.asarray(record.denoise(state, noisy, float(sigma)), dtype=np.float64)

        return denoise


@dataclass
class PairContext(_Context):
    """Everything a pair metric needs: ``models[k]`` was trained on ``train_images[k]``
    (k = 0 for S1, 1 for S2; disjoint subsets of the same size N), both in eval mode on
    ``device``. ``seed`` does not depend on the subset, so both models see the same draws."""

    models: tuple[torch.nn.Module, torch.nn.Module] = ()
    train_images: tuple[np.ndarray, np.ndarray] = ()
    #: ``models`` as :meth:`denoise` applies them (see :attr:`MetricContext.forward`).
    forwards: tuple = field(default=(), repr=False)

    def denoise(self, k: int, noisy: np.ndarray) -> np.ndarray:
        """Apply model ``k`` (0: S1, 1: S2) to (B, C, H, W) float32 noisy images; float32 out."""
        return apply_model((self.forwards or self.models)[k], noisy, self.device, self.batch_size)
