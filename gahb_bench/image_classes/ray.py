"""The ray: one photograph times a positive scale, a 1-D image manifold (the paper's App. C).

    x(s) = s · f,   s ~ U[s_min, s_max],  0 < s_min < s_max ≤ 1,

where f is one face of scikit-image's bundled LFW subset (``skimage.data.lfw_subset()``, 25×25
grey, no download) resized to ``image_size`` by ``skimage.transform.resize`` (bicubic,
anti-aliased), clipped to [0, 1] and divided by its maximum so that max f = 1; every image then
lies in [0, s] ⊂ [0, 1]. The manifold is a segment of a ray from the black image; its tangent at
every point is the direction of the photograph, ∂x/∂s = f, normalized: e = f/‖f‖.

Optimal denoiser, exact: with y = s f + z, the likelihood of s is Gaussian with mean
ŝ = ⟨y, f⟩/‖f‖² and standard deviation τ = σ/‖f‖, so s | y is that normal truncated to
[s_min, s_max] and E[x | y] = E[s | y] · f, with the truncated-normal mean
E[s | y] = ŝ + τ (φ(α) − φ(β))/(Φ(β) − Φ(α)), α = (s_min − ŝ)/τ, β = (s_max − ŝ)/τ. At small σ its
MSE tends to σ² (the projection on the 1-D tangent space), at large σ it tends to the class
mean (s_min + s_max)/2 · f. Its MSE per pixel is a 2-D integral, computed by quadrature:

    MSE*(σ) = (‖f‖²/d) · E_{s ~ U[s_min, s_max], ε ~ N(0,1)} [(E[s | ŝ = s + τε] − s)²].
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import ManifoldDataset

#: ``skimage.data.lfw_subset()`` holds 100 faces, then 100 non-face crops: only the faces count.
N_FACES = 100


@lru_cache(maxsize=16)
def ray_photograph(size: int, face_index: int = 0) -> np.ndarray:
    """The photograph f of the ray: LFW face ``face_index`` resized to (S, S), in [0, 1], max 1."""
    from skimage import data
    from skimage.transform import resize

    if not 0 <= int(face_index) < N_FACES:
        raise ValueError(f"ray: face_index must be in [0, {N_FACES}), got {face_index}")
    face = np.asarray(data.lfw_subset()[int(face_index)], dtype=np.float64)
    face = np.clip(resize(face, (int(size), int(size)), order=3, anti_aliasing=True), 0.0, 1.0)
    face = face / face.max()
    face.setflags(write=False)
    return face


def render_ray(latents: np.ndarray, photograph: np.ndarray) -> np.ndarray:
    """Images x = s · f for (n, 1) scales s: (n, S, S) float64."""
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[1] != 1:
        raise ValueError(f"ray: latents must have shape (n, 1) (the scale), got {latents.shape}")
    return latents[:, 0, None, None] * photograph[None]


def truncated_normal_mean(mean: np.ndarray, std: float, lower: float, upper: float) -> np.ndarray:
    """Mean of N(mean, std²) truncated to [lower, upper], elementwise, stable in the tails.

    E = μ + τ (φ(α) − φ(β)) / (Φ(β) − Φ(α)), α = (lower − μ)/τ, β = (upper − μ)/τ; evaluated in
    log space on the side where both bounds are non-positive (the other side by symmetry).
    """
    mean = np.asarray(mean, dtype=np.float64)
    alpha, beta = (lower - mean) / std, (upper - mean) / std
    # Reflect so that the bounds sit in the lower tail: then log Φ is accurate.
    flip = alpha > 0.0
    a = np.where(flip, -beta, alpha)
    b = np.where(flip, -alpha, beta)
    log_phi_a, log_phi_b = -0.5 * a * a, -0.5 * b * b
    log_z = log_ndtr(b) + np.log1p(-np.exp(log_ndtr(a) - log_ndtr(b)))
    # φ(a) − φ(b) with |a| ≥ |b| when b ≤ 0, or either sign when a < 0 < b.
    top = np.maximum(log_phi_a, log_phi_b)
    diff = np.exp(log_phi_a - top) - np.exp(log_phi_b - top)
    ratio = diff * np.exp(top - 0.5 * np.log(2.0 * np.pi) - log_z)
    return mean + std * np.where(flip, -ratio, ratio)


def ray_posterior_scale(y: np.ndarray, sigma: float, photograph: np.ndarray, scale_min: float,
                        scale_max: float) -> np.ndarray:
    """E[s | y] for images y (B, S, S) = s f + N(0, σ² Id), s ~ U[s_min, s_max]: (B,).

    The mean of N(ŝ, τ²) truncated to [s_min, s_max], ŝ = ⟨y, f⟩/‖f‖², τ = σ/‖f‖.
    """
    sigma = float(sigma)
    if not sigma > 0.0 or not np.isfinite(sigma):
        raise ValueError(f"ray: sigma must be positive and finite, got {sigma}")
    norm2 = float(np.sum(photograph**2))
    s_hat = np.einsum("bij,ij->b", np.asarray(y, dtype=np.float64), photograph) / norm2
    return truncated_normal_mean(s_hat, sigma / np.sqrt(norm2), scale_min, scale_max)


def ray_optimal_mse(sigma: float, photograph: np.ndarray, scale_min: float, scale_max: float,
                    n_nodes: int = 96) -> float:
    """MSE*(σ) per pixel of the ray's optimal denoiser, by Gauss–Legendre (in s) × Gauss–Hermite
    (in ε) quadrature of E[(E[s | ŝ] − s)²] ‖f‖²/d, ŝ = s + τε, τ = σ/‖f‖."""
    sigma = float(sigma)
    if not sigma > 0.0 or not np.isfinite(sigma):
        raise ValueError(f"ray: sigma must be positive and finite, got {sigma}")
    norm2 = float(np.sum(photograph**2))
    tau = sigma / np.sqrt(norm2)
    u, wu = np.polynomial.legendre.leggauss(int(n_nodes))
    s = scale_min + 0.5 * (scale_max - scale_min) * (u + 1.0)
    eps, we = np.polynomial.hermite_e.hermegauss(int(n_nodes))
    s_hat = s[:, None] + tau * eps[None]
    mean = truncated_normal_mean(s_hat, tau, scale_min, scale_max)
    risk = (0.5 * wu) @ ((mean - s[:, None]) ** 2 @ (we / np.sqrt(2.0 * np.pi)))
    return float(risk * norm2 / photograph.size)


class RayDataset(ManifoldDataset):
    """One LFW face times a uniform positive scale: a 1-D manifold (a ray segment).

    Parameters
    ----------
    image_size : S pixels.
    scale_min, scale_max : the scale prior U[s_min, s_max], 0 < s_min < s_max ≤ 1.
    face_index : which of the 100 LFW faces (default 0).
    """

    name = "ray"
    latent_dim = 1

    def __init__(self, image_size: int, scale_min: float = 0.1, scale_max: float = 1.0, face_index: int = 0):
        super().__init__(image_size)
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        if not 0.0 < self.scale_min < self.scale_max <= 1.0:
            raise ValueError(f"ray: need 0 < scale_min < scale_max <= 1, got {scale_min}, {scale_max}")
        if int(face_index) != face_index:
            raise TypeError(f"ray: face_index must be an integer, got {face_index!r}")
        self.face_index = int(face_index)
        self.photograph = ray_photograph(self.image_size, self.face_index)

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.scale_min, self.scale_max, (self._check_n(n), 1))

    def render(self, latents: np.ndarray) -> np.ndarray:
        return render_ray(latents, self.photograph)[:, None].astype(np.float32)

    def tangent_basis(self, latents: np.ndarray) -> np.ndarray:
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or latents.shape[1] != 1:
            raise ValueError(f"ray: latents must have shape (n, 1) (the scale), got {latents.shape}")
        direction = self.photograph / np.linalg.norm(self.photograph)
        return np.broadcast_to(direction, (len(latents), 1, 1) + direction.shape).copy()

    def optimal_denoiser(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """The exact E[x | y] = E[s | y] · f for y (B, 1, S, S) (see the module docstring)."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 4 or y.shape[1:] != (1,) + self.photograph.shape:
            raise ValueError(f"ray: y must have shape (B, 1, {self.image_size}, {self.image_size}), got {y.shape}")
        scale = ray_posterior_scale(y[:, 0], sigma, self.photograph, self.scale_min, self.scale_max)
        return (scale[:, None, None, None] * self.photograph).astype(np.float32)

    def optimal_jacobian(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """The exact Jacobian of the optimum, J*(y) = σ⁻² Cov[x | y] = σ⁻² Var[s | y] f fᵀ (rank one),
        for y (B, 1, S, S): (B, D, D) float64. Var[s | y] is the variance of N(ŝ, τ²) truncated to
        the scale range (see :func:`ray_posterior_scale`)."""
        from scipy.stats import truncnorm

        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 4 or y.shape[1:] != (1,) + self.photograph.shape:
            raise ValueError(f"ray: y must have shape (B, 1, {self.image_size}, {self.image_size}), got {y.shape}")
        f = self.photograph.ravel()
        norm2 = float(f @ f)
        tau = float(sigma) / np.sqrt(norm2)
        s_hat = y.reshape(len(y), -1) @ f / norm2
        var = truncnorm.var((self.scale_min - s_hat) / tau, (self.scale_max - s_hat) / tau, loc=s_hat, scale=tau)
        return (var / float(sigma) ** 2)[:, None, None] * np.outer(f, f)[None]

    def optimal_mse(self, sigma: float) -> float:
        """The exact MSE*(σ) per pixel (quadrature, see :func:`ray_optimal_mse`)."""
        return ray_optimal_mse(sigma, self.photograph, self.scale_min, self.scale_max)

    def declares(self) -> dict[str, Any]:
        out = super().declares()
        out.update({"latents": ["scale"], "scale_range": [self.scale_min, self.scale_max],
                    "face_index": self.face_index})
        return out


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="ray",
        build=RayDataset,
        params={"scale_min": 0.1, "scale_max": 1.0, "face_index": 0},
        description="One LFW face times a positive scale s ~ U[0.1, 1]: a 1-D manifold (a ray).",
    ))
