"""Disks: a 5-dimensional image manifold with an analytic tangent space (SCIENCE.md §5).

An image of the class is a disk of centre (cx, cy) and radius r, grey level ``fg`` inside and
``bg`` outside, rendered with a smooth (anti-aliased) edge so that the map θ ↦ g(θ) is
differentiable and the tangent space span{∂g/∂θ_i} exists everywhere:

    g(θ)[p] = bg + (fg − bg) · m_p,    m_p = Φ((r − ‖p − c‖) / w),

where p is the centre of pixel p, Φ the standard normal CDF and ``w`` the edge width in pixels:
the coverage profile m is that of a perfectly sharp disk blurred across its edge by a Gaussian of
standard deviation w (w = 0.5 px by default; w → 0 is the aliased, non-differentiable disk). The
image is a convex combination of fg and bg, so it lies in [0, 1].

Coordinates: the image covers the square [0, S]² in pixel units; pixel (row i, column j) has its
centre at (x, y) = (j + ½, i + ½); ``cx`` is the horizontal (column) coordinate, ``cy`` the
vertical (row) coordinate. Latents are ordered θ = (cx, cy, r, fg, bg).

Prior (the paper's class): r ~ U[3, (S − 3)/2), then cx, cy ~ U[r, S − r) independently (the disk
lies inside the image), fg, bg ~ U[0, 1] independently. It needs S ≥ 10.

Tangent: the analytic Jacobian ∂g/∂θ (5 columns),

    ∂g/∂fg = m,  ∂g/∂bg = 1 − m,  ∂g/∂r = (fg − bg) φ(δ)/w,
    ∂g/∂cx = (fg − bg) φ(δ)/w · (x − cx)/ρ,  ∂g/∂cy = (fg − bg) φ(δ)/w · (y − cy)/ρ,

with ρ = ‖p − c‖, δ = (r − ρ)/w and φ the normal density; orthonormalized by a QR decomposition.
When fg = bg the three geometric derivatives vanish and the tangent space degenerates (a set of
prior probability zero).

The class declares a Monte-Carlo optimal denoiser E[x | y]
(:mod:`gahb_bench.image_classes.disks_optimum`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import ManifoldDataset

#: Smallest radius of the prior, and margin in the largest one, r < (S − RADIUS_MARGIN) / 2.
RADIUS_MIN = 3.0
RADIUS_MARGIN = 3.0
#: Names of the latent parameters, in order.
LATENT_NAMES = ("cx", "cy", "r", "fg", "bg")

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _check_size(size: int) -> int:
    size = int(size)
    if size < 10:
        raise ValueError(f"disks: image_size must be at least 10 (radius in [3, (S-3)/2)), got {size}")
    return size


def _check_latents(latents: np.ndarray, k: int, name: str) -> np.ndarray:
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[1] != k:
        raise ValueError(f"{name}: latents must have shape (n, {k}), got {latents.shape}")
    return latents


def _check_edge_width(edge_width: float) -> float:
    edge_width = float(edge_width)
    if not 0.05 <= edge_width <= 4.0:
        raise ValueError(f"disks: edge_width must be in [0.05, 4] pixels, got {edge_width}")
    return edge_width


def pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each (S, S): x = column + ½, y = row + ½."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    return np.meshgrid(centres, centres, indexing="xy")


def radius_range(size: int) -> tuple[float, float]:
    """The prior's radius interval [3, (S − 3)/2)."""
    return RADIUS_MIN, (_check_size(size) - RADIUS_MARGIN) / 2.0


def sample_disk_latents(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` latents θ = (cx, cy, r, fg, bg) from the prior, (n, 5) float64.

    r ~ U[3, (S − 3)/2), cx, cy ~ U[r, S − r), fg, bg ~ U[0, 1].
    """
    r_lo, r_hi = radius_range(size)
    r = rng.uniform(r_lo, r_hi, n)
    centre = r[:, None] + (size - 2.0 * r[:, None]) * rng.uniform(0.0, 1.0, (n, 2))
    grey = rng.uniform(0.0, 1.0, (n, 2))
    return np.column_stack([centre, r, grey])


def disk_coverage(centres_radii: np.ndarray, size: int, edge_width: float) -> np.ndarray:
    """The coverage m = Φ((r − ‖p − c‖)/w) of disks given as (n, 3) rows (cx, cy, r): (n, S, S)."""
    cr = np.asarray(centres_radii, dtype=np.float64)
    x, y = pixel_centres(size)
    rho = np.hypot(x[None] - cr[:, 0, None, None], y[None] - cr[:, 1, None, None])
    return ndtr((cr[:, 2, None, None] - rho) / edge_width)


def disk_geometry(centres_radii: np.ndarray, size: int, edge_width: float):
    """Coverage m = Φ(δ) and the pieces of its derivative, for (n, 3) rows (cx, cy, r).

    Returns ``(m, dm_dr, ux, uy)``, each (n, S, S): the coverage, ∂m/∂r = φ(δ)/w, and the unit
    vector (p − c)/ρ (zero at ρ = 0, where the edge density φ(r/w) is negligible since r ≥ 3).
    """
    cr = np.asarray(centres_radii, dtype=np.float64)
    x, y = pixel_centres(size)
    dx = x[None] - cr[:, 0, None, None]
    dy = y[None] - cr[:, 1, None, None]
    rho = np.hypot(dx, dy)
    delta = (cr[:, 2, None, None] - rho) / edge_width
    m = ndtr(delta)
    dm_dr = np.exp(-0.5 * delta**2) * (_INV_SQRT_2PI / edge_width)
    safe = np.where(rho > 0.0, rho, 1.0)
    ux = np.where(rho > 0.0, dx / safe, 0.0)
    uy = np.where(rho > 0.0, dy / safe, 0.0)
    return m, dm_dr, ux, uy


def render_disks(latents: np.ndarray, size: int, edge_width: float = 0.5) -> np.ndarray:
    """The images g(θ) = bg + (fg − bg) Φ((r − ‖p − c‖)/w), (n, S, S) float64 in [0, 1].

    Parameters
    ----------
    latents : (n, 5) rows (cx, cy, r, fg, bg), positions in pixels (image = [0, S]²).
    size : image side S in pixels.
    edge_width : w, standard deviation in pixels of the Gaussian profile across the edge.
    """
    latents = _check_latents(latents, 5, "disks")
    m = disk_coverage(latents[:, :3], int(size), _check_edge_width(edge_width))
    fg = latents[:, 3, None, None]
    bg = latents[:, 4, None, None]
    return bg + (fg - bg) * m


def disk_jacobian(latents: np.ndarray, size: int, edge_width: float = 0.5) -> np.ndarray:
    """The analytic Jacobian ∂g/∂θ, (n, 5, S, S) float64, columns in the order of θ.

    See the module docstring for the formulas.
    """
    latents = _check_latents(latents, 5, "disks")
    m, dm_dr, ux, uy = disk_geometry(latents[:, :3], int(size), _check_edge_width(edge_width))
    contrast = (latents[:, 3] - latents[:, 4])[:, None, None]
    edge = contrast * dm_dr
    # ∂ρ/∂c = −(p − c)/ρ, and ∂m/∂ρ = −φ(δ)/w: the two signs cancel.
    return np.stack([edge * ux, edge * uy, edge, m, 1.0 - m], axis=1)


def orthonormal_tangent(jacobian: np.ndarray) -> np.ndarray:
    """Orthonormalize the k columns ∂g/∂θ_i of a Jacobian by QR: (n, k, ...) → (n, k, ...).

    The i-th output is the i-th Gram–Schmidt vector, so span{out_1..out_i} = span{∂g/∂θ_1..i}.
    The Jacobian must have rank k (else the basis would contain arbitrary directions).
    """
    jacobian = np.asarray(jacobian, dtype=np.float64)
    if jacobian.ndim < 3:
        raise ValueError(f"a Jacobian must have shape (n, k, ...), got {jacobian.shape}")
    n, k = jacobian.shape[:2]
    flat = jacobian.reshape(n, k, -1).transpose(0, 2, 1)
    q, _ = np.linalg.qr(flat)
    return q.transpose(0, 2, 1).reshape(jacobian.shape)


class DisksDataset(ManifoldDataset):
    """Disks with grey foreground and background: a 5-D manifold (SCIENCE.md §5).

    Parameters
    ----------
    image_size : S ≥ 10 pixels.
    edge_width : w, the Gaussian edge profile's standard deviation in pixels (default 0.5).
    optimum_samples : importance samples per image of the optimal denoiser (default 4096).
    optimum_seed : seed of the optimal denoiser's Monte-Carlo draws (fixed: it is deterministic).
    """

    name = "disks"
    latent_dim = 5

    def __init__(self, image_size: int, edge_width: float = 0.5, optimum_samples: int = 4096,
                 optimum_seed: int = 0):
        super().__init__(_check_size(image_size))
        self.edge_width = _check_edge_width(edge_width)
        if int(optimum_samples) < 64:
            raise ValueError(f"disks: optimum_samples must be at least 64, got {optimum_samples}")
        self.optimum_samples = int(optimum_samples)
        self.optimum_seed = int(optimum_seed)

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_disk_latents(self._check_n(n), self.image_size, rng)

    def render(self, latents: np.ndarray) -> np.ndarray:
        return render_disks(latents, self.image_size, self.edge_width)[:, None].astype(np.float32)

    def tangent_basis(self, latents: np.ndarray) -> np.ndarray:
        jac = disk_jacobian(latents, self.image_size, self.edge_width)
        return orthonormal_tangent(jac)[:, :, None]

    def optimal_denoiser(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """E[x | y] under the disks prior, by importance sampling (see disks_optimum).

        ``y`` is (B, 1, S, S); ``sigma`` a scalar or one per image.
        """
        from gahb_bench.image_classes.disks_optimum import disks_posterior

        y = np.asarray(y)
        if y.ndim != 4 or y.shape[1] != 1 or y.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"disks: y must have shape (B, 1, {self.image_size}, {self.image_size}), got {y.shape}")
        post = disks_posterior(y[:, 0], sigma, edge_width=self.edge_width,
                               n_samples=self.optimum_samples, seed=self.optimum_seed)
        return post.mean[:, None].astype(np.float32)

    def optimal_jacobian(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """J*(y) = σ⁻² Cov[x | y] by importance sampling, for y (B, 1, S, S): (B, D, D) float64."""
        return self.optimal_posterior(y, sigma, jacobian=True).jacobian

    def optimal_posterior(self, y: np.ndarray, sigma: float, jacobian: bool = False):
        """The full :class:`~gahb_bench.image_classes.disks_optimum.DisksPosterior` for (B, 1, S, S) y:
        mean, tr J*, Monte-Carlo error, effective sample size (and J* when asked)."""
        from gahb_bench.image_classes.disks_optimum import disks_posterior

        y = np.asarray(y)
        if y.ndim != 4 or y.shape[1] != 1:
            raise ValueError(f"disks: y must have shape (B, 1, H, W), got {y.shape}")
        return disks_posterior(y[:, 0], sigma, edge_width=self.edge_width,
                               n_samples=self.optimum_samples, seed=self.optimum_seed, jacobian=jacobian)

    def declares(self) -> dict[str, Any]:
        from gahb_bench.image_classes.disks_optimum import SIGMA_RANGE

        out = super().declares()
        out.update({"optimum": "monte-carlo", "optimum_sigma_range": list(SIGMA_RANGE),
                    "latents": list(LATENT_NAMES), "edge_width": self.edge_width})
        return out


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="disks",
        build=DisksDataset,
        params={"edge_width": 0.5, "optimum_samples": 4096, "optimum_seed": 0},
        description="Anti-aliased grey disks on a grey background: a 5-D manifold with tangent and MC optimum.",
    ))


__all__ = ["DisksDataset", "render_disks", "disk_coverage", "disk_jacobian", "orthonormal_tangent",
           "sample_disk_latents", "pixel_centres", "radius_range"]
