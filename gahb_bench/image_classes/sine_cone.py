"""The sine cone: a 2-D image manifold of sinusoids with random amplitude and phase.

One of the low-dimensional manifolds of the paper's Appendix C ("a 2-D sine cone: unit frequency,
random phase and amplitude"). The appendix gives no formula, so the class is defined here as

    x(a, φ)[p] = (a / 2) · (1 + sin(2π ⟨k, p⟩ / S + φ)),

with p = (j + ½, i + ½) the centre of pixel (row i, column j), k = (kx, ky) an integer
frequency vector in cycles per image (default (1, 0): one period across the image, the "unit
frequency"), amplitude a ∈ [a_min, a_max] ⊂ (0, 1] and phase φ ∈ [0, 2π). Every image lies in
[0, a] ⊂ [0, 1].

Why a cone: in the 3-D space spanned by the constant image 1 and the two quadrature sinusoids
s = sin(2π⟨k,p⟩/S), c = cos(2π⟨k,p⟩/S), the image is (a/2)(1 + cos φ · s + sin φ · c), so the
class is a circular cone with its apex at the black image, its axis along the constant image,
and a as the distance along its generators. Its latents θ = (a, φ) and tangent vectors are

    ∂x/∂a = (1 + sin(2π⟨k,p⟩/S + φ)) / 2 = x / a,    ∂x/∂φ = (a/2) cos(2π⟨k,p⟩/S + φ),

which are orthogonal for every a, φ (an integer frequency makes the sums of sin, cos and sin·cos
over the grid vanish). The tangent space is the plane containing the generator through x and
the direction around the axis; it rotates with φ, so the manifold is curved (not a linear
subspace), and it degenerates at the apex a = 0, which a_min > 0 keeps out of the prior.

Prior: a ~ U[a_min, a_max], φ ~ U[0, 2π), independent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gahb_bench.contracts import ImageClass
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.base import ManifoldDataset
from gahb_bench.image_classes.disks import orthonormal_tangent, pixel_centres


def sine_phase_field(size: int, frequency: tuple[int, int]) -> np.ndarray:
    """The phase 2π⟨k, p⟩/S of the unit sinusoid at each pixel centre p, (S, S)."""
    x, y = pixel_centres(int(size))
    return 2.0 * np.pi * (frequency[0] * x + frequency[1] * y) / size


def render_sine_cone(latents: np.ndarray, size: int, frequency: tuple[int, int] = (1, 0)) -> np.ndarray:
    """Images x = (a/2)(1 + sin(2π⟨k,p⟩/S + φ)) for (n, 2) rows (a, φ): (n, S, S) float64."""
    latents = _check_latents(latents)
    phase = sine_phase_field(size, frequency)[None] + latents[:, 1, None, None]
    return 0.5 * latents[:, 0, None, None] * (1.0 + np.sin(phase))


def sine_cone_jacobian(latents: np.ndarray, size: int, frequency: tuple[int, int] = (1, 0)) -> np.ndarray:
    """The analytic Jacobian (∂x/∂a, ∂x/∂φ), (n, 2, S, S) float64."""
    latents = _check_latents(latents)
    phase = sine_phase_field(size, frequency)[None] + latents[:, 1, None, None]
    d_amplitude = 0.5 * (1.0 + np.sin(phase))
    d_phase = 0.5 * latents[:, 0, None, None] * np.cos(phase)
    return np.stack([d_amplitude, d_phase], axis=1)


def _check_latents(latents: np.ndarray) -> np.ndarray:
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[1] != 2:
        raise ValueError(f"sine_cone: latents must have shape (n, 2) rows (amplitude, phase), got {latents.shape}")
    return latents


class SineConeDataset(ManifoldDataset):
    """Sinusoids of one integer frequency with random amplitude and phase: a 2-D cone.

    Parameters
    ----------
    image_size : S pixels.
    amplitude_min, amplitude_max : the amplitude prior U[a_min, a_max], 0 < a_min < a_max ≤ 1.
    frequency_x, frequency_y : integer frequency (cycles per image) along columns and rows,
        not both zero and below the Nyquist limit S/2.
    """

    name = "sine_cone"
    latent_dim = 2

    def __init__(self, image_size: int, amplitude_min: float = 0.1, amplitude_max: float = 1.0,
                 frequency_x: int = 1, frequency_y: int = 0):
        super().__init__(image_size)
        self.amplitude_min, self.amplitude_max = float(amplitude_min), float(amplitude_max)
        if not 0.0 < self.amplitude_min < self.amplitude_max <= 1.0:
            raise ValueError("sine_cone: need 0 < amplitude_min < amplitude_max <= 1, got "
                             f"{amplitude_min}, {amplitude_max}")
        if int(frequency_x) != frequency_x or int(frequency_y) != frequency_y:
            raise TypeError(f"sine_cone: frequencies must be integers, got {frequency_x}, {frequency_y}")
        self.frequency = (int(frequency_x), int(frequency_y))
        if self.frequency == (0, 0) or max(abs(f) for f in self.frequency) * 2 >= self.image_size:
            raise ValueError(f"sine_cone: frequency {self.frequency} must be non-zero and below S/2 = "
                             f"{self.image_size / 2}")

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        n = self._check_n(n)
        amplitude = rng.uniform(self.amplitude_min, self.amplitude_max, n)
        phase = rng.uniform(0.0, 2.0 * np.pi, n)
        return np.column_stack([amplitude, phase])

    def render(self, latents: np.ndarray) -> np.ndarray:
        return render_sine_cone(latents, self.image_size, self.frequency)[:, None].astype(np.float32)

    def tangent_basis(self, latents: np.ndarray) -> np.ndarray:
        return orthonormal_tangent(sine_cone_jacobian(latents, self.image_size, self.frequency))[:, :, None]

    def declares(self) -> dict[str, Any]:
        out = super().declares()
        out.update({"latents": ["amplitude", "phase"], "frequency": list(self.frequency),
                    "amplitude_range": [self.amplitude_min, self.amplitude_max]})
        return out


@hookimpl
def gahb_register_image_classes(register):
    register(ImageClass(
        name="sine_cone",
        build=SineConeDataset,
        params={"amplitude_min": 0.1, "amplitude_max": 1.0, "frequency_x": 1, "frequency_y": 0},
        description="Sinusoids (a/2)(1 + sin(2πk·p/S + φ)), random amplitude and phase: a 2-D cone.",
    ))
