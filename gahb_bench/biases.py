"""Inductive-bias axes: what an architecture declares about itself, and which headline scores
the theory says each axis should move.

An :class:`~gahb_bench.contracts.Architecture` may declare ``biases``: a mapping from the axes
of :data:`AXES` to short descriptions (``{"locality": "local", "receptive_field": "9 px"}``).
``gahb publish`` copies the declaration into the leaderboard entry, and the site's comparison page
sets the architectures side by side along each axis, with the scores :data:`AXES` names for it.

The predictions, from the literature the battery follows:

- **locality** and **translation equivariance**: a denoiser that is local and equivariant is a
  function of patches, and patch distributions are learned from far fewer images than whole
  images (Kamb & Ganguli 2024, "An analytic theory of creativity in convolutional diffusion
  models"; Niedoba et al. 2024, "Towards a mechanistic explanation of diffusion model
  generalization"): higher agreement with the ``local`` and ``equivariant-local`` references,
  a smaller P*, and generalization (N*) at smaller N.
- **global** interactions without locality (an MLP, attention on pixels): nothing stops the
  network from fitting whole training images: more memorization at small N, a larger N*, higher
  agreement with the ``empirical`` (memorizing) reference.
- **homogeneity** (no additive constants): f(y) = ∇f(y)·y, the adaptive-shrinkage reading of the
  paper's GAHB (Mohan et al. 2020, "Robust and interpretable blind image denoising via
  bias-free convolutional neural networks"): homogeneity residual 0, and a smaller optimality
  gap across noise levels.
- **multiscale** structure: the harmonic bases adapt to edges at every scale; the C^α slopes and
  the tangent-space energy are where the paper reads that (§3, Figs. 4 and 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Axis:
    """One axis of inductive bias: ``scores`` are the scorecard keys it should move and
    ``prediction`` says how."""

    key: str
    title: str
    question: str
    scores: tuple[str, ...]
    prediction: str


AXES = (
    Axis("locality", "Locality", "Does an output pixel depend only on a neighbourhood of the input?",
         ("reference_r2_local", "locality_patch_size", "n_star"),
         "local networks agree more with the local reference, at a patch size P* near their receptive field, "
         "and generalize at smaller N"),
    Axis("receptive_field", "Receptive field", "How far can an output pixel see?",
         ("locality_patch_size",),
         "P* grows with the receptive field until the image size caps it"),
    Axis("translation_equivariance", "Translation equivariance", "Does a shifted input give the shifted output?",
         ("reference_r2_equivariant-local", "n_star"),
         "equivariant local networks agree with the equivariant-local (ELS) reference and generalize at smaller N"),
    Axis("homogeneity", "Homogeneity (bias-free)", "Is f(a·y) = a·f(y) (no additive constants)?",
         ("homogeneity_residual", "optimality_gap_db", "kl_bound"),
         "bias-free networks have homogeneity residual 0 and smaller optimality gaps across noise levels"),
    Axis("global_attention", "Global interactions", "Can every output pixel depend on every input pixel in one layer?",
         ("memorization_excess_gap_db", "n_star", "reference_r2_empirical"),
         "global networks memorize more at small N, need a larger N to generalize, agree more with the empirical optimum"),
    Axis("multiscale", "Multiscale", "Does the network process several resolutions?",
         ("calpha_slope_error", "calpha_slope_gain_over_bandlets", "tangent_energy_fraction"),
         "multiscale networks reach slopes nearer α/(α+1) on C^α images and put more Jacobian energy in the tangent space"),
)

BY_KEY = {axis.key: axis for axis in AXES}
#: The longest description an architecture may give for one axis.
MAX_DESCRIPTION = 60


def check(biases: Mapping[str, Any], owner: str) -> None:
    """Raise ValueError unless ``biases`` maps known axes to short strings; ``owner`` names the
    architecture in the message."""
    if not isinstance(biases, Mapping):
        raise ValueError(f"{owner}: biases must be a mapping from axes to descriptions")
    for key, text in biases.items():
        if key not in BY_KEY:
            raise ValueError(f"{owner}: unknown bias axis {key!r}; axes: {', '.join(BY_KEY)}")
        if not isinstance(text, str) or not 0 < len(text) <= MAX_DESCRIPTION:
            raise ValueError(f"{owner}: bias {key!r} must be a description of 1 to {MAX_DESCRIPTION} characters")
