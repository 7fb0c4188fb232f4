"""The Gaussian (Wiener) denoiser of a training set: a linear model of the images.

Fit a Gaussian N(μ, Σ) to the N training images x_i (as vectors of D pixels),

    μ = (1/N) Σ_i x_i,   Σ = (1/N) Σ_i (x_i − μ)(x_i − μ)ᵀ = V diag(λ) Vᵀ,

(the mean and covariance of the training set's empirical distribution); its MMSE denoiser at
noise level σ is linear,

    f(y) = μ + Σ (Σ + σ² Id)⁻¹ (y − μ) = μ + V diag(λ_k / (λ_k + σ²)) Vᵀ (y − μ):

a shrinkage of y − μ in the PCA basis V of the training set, with the Wiener factors
λ_k/(λ_k + σ²). It is the natural null model for a GAHB: a fixed basis for every image, where
the network's basis adapts to each. With N < D, Σ has rank at most N − 1 and f(y) lies in the
affine span of the training images.

Cost: one D×D covariance and one ``eigh`` (O(N D² + D³), float64) at fit time, then two D×D
matrix products per batch; memory D² floats, so images up to ``max_dim`` = 4096 pixels (64×64
gray: 134 MB) are supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gahb_bench.contracts import Reference
from gahb_bench.hookspecs import hookimpl
from gahb_bench.references.common import training_batch

MAX_DIM = 4096


@dataclass(frozen=True)
class GaussianFit:
    """μ (D,), the eigenvalues λ (D,) and eigenvectors V (D, D) (columns) of Σ."""

    mean: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def fit_gaussian(train_images, max_dim: int = MAX_DIM) -> GaussianFit:
    """Mean and eigen-decomposition of the covariance (1/N normalization) of ``train_images``
    (N, C, H, W), in float64. Refuses images of more than ``max_dim`` pixels (D² memory)."""
    x = training_batch(train_images)
    x = x.reshape(len(x), -1)
    dim = x.shape[1]
    if dim > max_dim:
        raise ValueError(f"the gaussian reference supports images of at most {max_dim} pixels "
                         f"(its covariance is D × D), got D = {dim}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / len(x)
    vals, vecs = np.linalg.eigh(cov)
    # Round-off makes the null directions' eigenvalues ±1e-17: clip at 0 (a covariance).
    return GaussianFit(mean, np.clip(vals, 0.0, None), vecs)


def gaussian_denoise(state: GaussianFit, noisy, sigma: float) -> np.ndarray:
    """μ + V diag(λ/(λ + σ²)) Vᵀ (y − μ) for each image of ``noisy`` (B, C, H, W); float64."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    y = np.asarray(noisy, np.float64)
    flat = y.reshape(len(y), -1)
    if flat.shape[1] != state.mean.size:
        raise ValueError(f"images of {flat.shape[1]} pixels given to a gaussian reference fitted on "
                         f"{state.mean.size}")
    gain = state.eigenvalues / (state.eigenvalues + float(sigma) ** 2)
    coeffs = (flat - state.mean) @ state.eigenvectors
    return (state.mean + (coeffs * gain) @ state.eigenvectors.T).reshape(y.shape)


@hookimpl
def gahb_register_references(register):
    register(Reference(name="gaussian", fit=fit_gaussian, denoise=gaussian_denoise, params={"max_dim": MAX_DIM},
                       max_dim=MAX_DIM,
                       description="the Wiener filter of the training set's mean and covariance (PCA shrinkage)"))
