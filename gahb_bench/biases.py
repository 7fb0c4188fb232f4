"""Inductive-bias axes: what an architecture declares about itself, and which headline scores
the theory says each axis should move.

An :class:`~gahb_bench.contracts.Architecture` may declare ``biases``: a mapping from the axes
of :data:`AXES` to short descriptions (``{"locality": "local", "receptive_field": "9 px"}``).
``gahb publish`` copies the declaration into the leaderboard entry, and the site's comparison page
sets the architectures side by side along each axis, with the scores :data:`AXES` names for it.

What each axis should move. Where a paper measured it, it is cited; where the battery's scores
only make a prediction testable, it says "hypothesis":

- **locality** and **translation equivariance**: a denoiser that is local and equivariant is a
  function of patches. Kamb & Ganguli (2024, "An analytic theory of creativity in convolutional
  diffusion models") and Niedoba et al. (2024, "Towards a mechanistic explanation of diffusion
  model generalization") show trained convolutional denoisers agree with patch-based closed-form
  ones, at an effective patch scale that depends on σ and is much smaller than the receptive field:
  higher agreement with the ``local`` and ``equivariant-local`` references, and a P* at most the
  receptive field (the metric's patch grid caps it). Hypothesis: patch distributions are learned
  from fewer images, so such networks generalize (N*) at smaller N.
- **receptive field**: what "local" means depends on the image. A network whose receptive field
  covers the image (a 43-pixel BF-CNN on 16-pixel patches) is global there, and zero padding tells
  it where it is; the declarations say so.
- **global interactions** without locality (an MLP; attention): nothing ties the network to
  patches. Hypothesis: more memorization at small N, a larger N*, higher agreement with the
  ``empirical`` (memorizing) reference.
- **homogeneity** (no additive constants): f(y) = ∇f(y)·y, the adaptive-shrinkage reading of the
  paper's GAHB; the homogeneity residual is 0 by construction for a bias-free network and is
  what shows a biased one. Mohan et al. (2020, "Robust and interpretable blind image denoising via
  bias-free convolutional neural networks") find biased networks fail *outside* the training range
  of σ and perform about the same inside it; the battery trains on σ ∈ [0, 1] and evaluates inside
  it, so no score here tests that claim.
- **multiscale** structure: hypothesis (the paper does not compare multiscale with single-scale
  networks): the harmonic bases adapt to edges at every scale, so C^α slopes nearer α/(α+1) and
  more Jacobian energy in the tangent space (§3, Figs. 4 and 5 are where the paper reads these).
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
         ("reference_r2_local", "locality_patch_size", "locality_radius_px", "n_star"),
         "local networks agree more with the local reference, at a P* no larger than their receptive field (an "
         "effective, σ-dependent scale); hypothesis: they generalize at smaller N"),
    Axis("receptive_field", "Receptive field", "How far can an output pixel see, against the image size?",
         ("locality_patch_size", "locality_radius_px"),
         "P* and the Jacobian's radius are at most the receptive field; a field that covers the image makes the "
         "network global there"),
    Axis("translation_equivariance", "Translation equivariance", "Does a shifted input give the shifted output?",
         ("reference_r2_equivariant-local", "n_star"),
         "equivariant local networks agree with the equivariant-local (ELS) reference; hypothesis: smaller N*"),
    Axis("homogeneity", "Homogeneity (bias-free)", "Is f(a·y) = a·f(y) (no additive constants)?",
         ("homogeneity_residual",),
         "0 by construction when bias-free; a biased network shows a residual (Mohan et al.'s failure outside "
         "the training σ range is not tested by this battery)"),
    Axis("global_interactions", "Global interactions",
         "Can every output pixel depend on every input pixel within one layer (dense layers, attention)?",
         ("locality_radius_px", "memorization_excess_gap_db", "n_star", "reference_r2_empirical"),
         "their Jacobian rows spread wider; hypothesis: global networks memorize more at small N, need a larger N "
         "to generalize, and agree more with the empirical optimum"),
    Axis("multiscale", "Multiscale", "Does the network process several resolutions?",
         ("calpha_slope_error", "calpha_slope_gain_over_bandlets", "tangent_energy_fraction"),
         "hypothesis: multiscale networks reach slopes nearer α/(α+1) on C^α images and put more Jacobian energy "
         "in the tangent space"),
)

BY_KEY = {axis.key: axis for axis in AXES}
#: The longest description an architecture may give for one axis.
MAX_DESCRIPTION = 60


def problems(biases: Mapping[str, Any]) -> list[tuple[str, str]]:
    """[(axis, what is wrong)] of a declaration of biases: axes this install does not define,
    descriptions that are not strings of 1 to :data:`MAX_DESCRIPTION` characters; [] when it is
    valid. Shared by the architecture record and the leaderboard's entry check."""
    out = []
    for key, text in biases.items():
        if key not in BY_KEY:
            out.append((key, f"unknown axis; axes: {', '.join(BY_KEY)}"))
        elif not isinstance(text, str) or not 0 < len(text) <= MAX_DESCRIPTION:
            out.append((key, f"expected a description of 1 to {MAX_DESCRIPTION} characters"))
    return out


def check(biases: Mapping[str, Any], owner: str) -> None:
    """Raise ValueError unless ``biases`` maps known axes to short strings; ``owner`` names the
    architecture in the message."""
    if not isinstance(biases, Mapping):
        raise ValueError(f"{owner}: biases must be a mapping from axes to descriptions")
    if found := problems(biases):
        key, what = found[0]
        raise ValueError(f"{owner}: bias {key!r}: {what}")
