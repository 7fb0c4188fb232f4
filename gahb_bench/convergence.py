"""Did a cell's network finish training? The diagnostics each cell records, and the verdict.

A score measured on a network that is still learning says more about the training budget
than about the architecture: at large N an undertrained network has train ≈ test because it
fits neither, which looks like generalization. Two diagnostics guard against that:

* **Loss change**: the training loss (Σ pixels (f(y) − x)² / batch) averaged over each tenth
  of the steps gives a profile L₁ … L₁₀; the relative change over the last tenth is
  c = (L₁₀ − L₉) / L₉, with standard error
  se = √(Var₉/n₉ + Var₁₀/n₁₀) / L₉ from the per-step losses. Still learning: c < −max(tol, 2·se)
  (by default the loss fell by more than 5% over the last tenth of training).
* **Low-noise gain**: the output PSNR on the cell's own training images at the smallest σ of
  the grid minus the input PSNR there. A trained blind denoiser is never worse than returning
  its input at low noise; a negative gain means it has not yet learned to leave clean
  structure alone (a typical sign of a short budget).

The loss is a sum over noise levels, so a stall at some σ can hide in it. Two controls on the
test curve catch that (:func:`shortfalls`): a trained denoiser should do at least as well as a
trivial one that needs no training (the ``image-mean`` baseline: every pixel set to the noisy
image's mean), and at least as well as the same architecture trained on a smaller subset of
the same data (with more passes over each image). A test curve more than ``tolerance`` dB below
either, at some σ, marks a cell whose budget did not suffice at those noise levels.

:func:`verdict` turns the diagnostics into an empty string (converged) or the reasons it did not.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

#: Bins of the loss profile (tenths of training).
PROFILE_BINS = 10
#: The largest relative fall of the loss over the last tenth of training still called converged.
LOSS_TOLERANCE = 0.05


def loss_profile(losses: np.ndarray, bins: int = PROFILE_BINS) -> np.ndarray:
    """Mean of the per-step ``losses`` over ``bins`` consecutive, (nearly) equal runs of steps."""
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) < bins:
        return np.full(bins, np.nan)
    return np.array([chunk.mean() for chunk in np.array_split(losses, bins)])


def loss_change(losses: np.ndarray, bins: int = PROFILE_BINS) -> tuple[float, float]:
    """(c, se): relative change of the mean loss from the second-to-last to the last of ``bins``
    runs of steps, and its standard error (see the module docstring). NaN with fewer than two
    steps per run."""
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) < 2 * bins:
        return math.nan, math.nan
    before, last = np.array_split(losses, bins)[-2:]
    ref = before.mean()
    change = (last.mean() - ref) / ref
    se = math.sqrt(before.var(ddof=1) / len(before) + last.var(ddof=1) / len(last)) / ref
    return float(change), float(se)


#: The verdict's reason for a cell that recorded no loss profile (not judged by the loss).
NO_PROFILE = "no loss profile recorded"


def verdict(change: float, change_se: float, low_noise_gain: float | None = None,
            tolerance: float = LOSS_TOLERANCE) -> str:
    """'' when the cell looks converged, else the reasons it does not, joined by '; '.

    ``low_noise_gain`` (dB) is the training-image output PSNR minus the input PSNR at the
    smallest σ; None or NaN skips that check. NaN loss diagnostics (no profile) are reported.
    """
    reasons = []
    if not math.isfinite(change):
        reasons.append(NO_PROFILE)
    elif change < -max(tolerance, 2.0 * (change_se if math.isfinite(change_se) else 0.0)):
        reasons.append(f"loss still falling {-100 * change:.0f}% over the last tenth of training")
    if low_noise_gain is not None and math.isfinite(low_noise_gain) and low_noise_gain < 0:
        # a loss under 0.05 dB in one significant digit: never "-0.0 dB"
        gain = f"{low_noise_gain:+.1f}" if low_noise_gain <= -0.05 else f"{low_noise_gain:+.1g}"
        reasons.append(f"worse than the identity on its training images at the smallest sigma ({gain} dB)")
    return "; ".join(reasons)


#: dB by which a test curve may fall below a reference curve before :func:`shortfalls` reports it.
SHORTFALL_TOLERANCE = 0.3


def shortfalls(test_psnr: np.ndarray, sigmas: np.ndarray, references: dict[str, np.ndarray],
               tolerance: float = SHORTFALL_TOLERANCE) -> list[str]:
    """One reason per reference curve that the test curve falls more than ``tolerance`` dB below
    at some σ, naming the σ range and the largest shortfall; [] when none does."""
    test_psnr, sigmas = np.asarray(test_psnr, float), np.asarray(sigmas, float)
    reasons = []
    for name, reference in references.items():
        deficit = np.asarray(reference, float) - test_psnr
        below = np.isfinite(deficit) & (deficit > tolerance)
        if below.any():
            reasons.append(f"test PSNR below {name} at sigma {sigmas[below].min():.3g}-{sigmas[below].max():.3g} "
                           f"(by up to {deficit[below].max():.1f} dB)")
    return reasons


# The stored cells: the verdict of each (an xarray cell of an experiment with a ``psnr``
# variable, as :mod:`gahb_bench.store` writes it).

def low_noise_gain(cell) -> float:
    """Output minus input PSNR on the training images at the smallest σ of a cell's grid (dB)."""
    if "psnr" not in cell or "split" not in cell.dims and "split" not in cell.coords:
        return float("nan")
    k = int(np.argmin(cell.sigma.values))
    return float(cell.psnr.sel(split="train").values[k] - cell.psnr_in.values[k])


#: A cell whose excess gap (psnr_gap − psnr_gap_floor) is at most this generalizes; only then is
#: a test curve below a trivial control or a smaller-N network a sign of undertraining (a
#: memorizing network is below them by design).
GENERALIZES_WITHIN = 0.5


def cell_verdict(cell, references: dict | None = None) -> str:
    """'' when the cell's network looks converged, else why not: :func:`verdict`, then, for a
    cell that generalizes, :func:`shortfalls` of its test curve against ``references`` (name →
    test PSNR curve on the same σ grid)."""
    change = float(cell.loss_change) if "loss_change" in cell else float("nan")
    change_se = float(cell.loss_change_se) if "loss_change_se" in cell else float("nan")
    reasons = [verdict(change, change_se, low_noise_gain(cell))]
    excess = float(cell.psnr_gap - cell.psnr_gap_floor) if "psnr_gap_floor" in cell else float("nan")
    if references and "psnr" in cell and abs(excess) <= GENERALIZES_WITHIN:
        reasons += shortfalls(cell.psnr.sel(split="test").values, cell.sigma.values, references)
    return "; ".join(r for r in reasons if r)


def test_references(ds, image_class, n, subset, seed) -> dict:
    """The curves a cell's test curve should not fall below: the ``image-mean`` baseline (when the
    experiment ran it) and the test curves of the done cells with a smaller N (same class,
    subset and seed). ``ds``: one architecture's experiment (no ``arch`` dimension)."""
    from gahb_bench import store

    refs = {}
    if "baseline_psnr" in ds and "image-mean" in ds.baseline.values:
        base = ds.sel(baseline="image-mean", image_class=image_class, seed=seed)
        if int(base.baseline_status) == store.DONE:
            refs["the image-mean baseline"] = base.baseline_psnr.values
    for smaller in ds.n_train.values[ds.n_train.values < n]:
        other = ds.sel(image_class=image_class, n_train=smaller, subset=subset, seed=seed)
        if int(other.status) == store.DONE:
            refs[f"the N={smaller} network"] = other.psnr.sel(split="test").values
    return refs


def cells(ds):
    """(image class, N, subset, seed) and the cell, for every cell of one architecture's
    experiment ``ds`` (no ``arch`` dimension), in coordinate order."""
    for cls, n, sub, seed in itertools.product(ds.image_class.values, ds.n_train.values, ds.subset.values,
                                               ds.seed.values):
        yield (str(cls), int(n), int(sub), int(seed)), ds.sel(image_class=cls, n_train=n, subset=sub, seed=seed)


def cell_verdicts(ds) -> list[tuple[tuple[str, int, int, int], str]]:
    """[((image class, N, subset, seed), verdict)] of every done cell of one architecture's
    experiment ``ds`` (no ``arch`` dimension) that trains a network: '' for a converged one, else
    why not (:func:`cell_verdict` against :func:`test_references`)."""
    from gahb_bench import store

    if "psnr" not in ds or "status" not in ds:
        return []
    return [(key, cell_verdict(cell, test_references(ds, *key))) for key, cell in cells(ds)
            if int(cell.status) == store.DONE]
