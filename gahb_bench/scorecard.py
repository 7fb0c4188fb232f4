"""The scorecard: a few headline scores per store, each defined once, here and in the README.

Each :class:`Score` names its formula, units, direction (``lower`` or ``higher`` is better, or
``none`` for a descriptive score that the theory does not rank) and the experiment it comes
from. :func:`compute` reads them from the experiments' datasets and their stored summaries
(:mod:`gahb_bench.summaries`); a score whose experiment or cells are missing is None with the
reason. A score read at one N carries, as its note says: over the replicates alone (subsets
S1, S2 and seeds), their range when there are fewer than :data:`FEW_REPLICATES`, else a 95%
percentile bootstrap interval (:mod:`gahb_bench.bootstrap`); over the replicates and the test
images or samples where the metric keeps each one's value, a 95% percentile bootstrap interval
(an exact binomial one where a copy count is too small for it); where the metric stores an
interval (the bootstrap interval of a C^α slope), that. A score averaged over classes carries
the range over them.

The scores, for the network (the baselines get those that apply, :func:`baseline_scores`):

- ``excess_gap_db`` (generalization, largest N): the train − test gap of the mean output PSNR
  over σ, minus the same gap for a training-free denoiser on the same images (the floor that
  sampling alone produces). 0: no memorization beyond chance; closer to 0 is better (a
  negative value is sampling noise, not better generalization).
- ``memorization_excess_gap_db`` (generalization, smallest N): the same at the smallest N, where
  the paper's networks memorize (large values). Descriptive.
- ``copy_fraction`` (generalization, smallest N ≥ 2): the fraction of the S1 and S2 models'
  samples that are copies, ‖x − NN₁‖/‖x − NN₂‖ below the metric's ``copy_threshold`` (1/3: Gu
  et al. 2023), mean over the two models (:mod:`gahb_bench.metrics.paired_samples`); a copy
  needs two training images, so N = 1 is skipped. 1 for a memorizer; 0 also for a network that
  does not denoise or whose samples collapsed (read it with N*'s controls). None where the
  grid holds no N between 2 and its largest (``smoke``: N = 1 and all). Descriptive.
- ``memorizer_distance`` (generalization, smallest N ≥ 2, σ = 0.1): E‖f(y) − f_N(y)‖² /
  E‖f_N(y) − x‖², f_N the empirical optimum of the training subset
  (:mod:`gahb_bench.metrics.memorization`), interpolated in log σ: 0 for the memorizer, about 1
  for a denoiser as far from it as the test image is; the note gives the same at the largest N.
  None, as ``copy_fraction``, where the smallest N ≥ 2 is the grid's largest.
  Descriptive.
- ``n_star`` (generalization): the smallest N at which the samples of the S1 and S2 models from
  the same noise agree (median centred similarity ≥ 0.9) while their samples from different
  noise do not (the unpaired control: two collapsed models agree on both), and both models beat
  the identity on the test set (their samples are images). Lower is better; None: not reached.
  Its range is N* with every median at the top, then at the bottom, of its 95% bootstrap
  interval over the samples of these trained models (their training, subsets and seeds held
  fixed: a rerun on another machine varies more); the note gives the median and its interval
  at the deciding N.
- ``model_variance_db`` (generalization, largest N): 10 log10 E‖f₁(y) − f₂(y)‖²/(Dσ²), averaged
  over σ, of the S1 and S2 models on the same noisy test images. Lower is better. Its interval
  resamples the pairs and the test images (each image's own ‖f₁ − f₂‖²/D is stored since
  battery 0.14; an older store gives the range over pairs, or none with one pair).
- ``reference_r2_<ref>`` (generalization, largest N, σ = 0.1): the median centred r² of the
  reference denoiser's output against the network's (median over test images, mean over
  replicates, as the summary reports it). Descriptive (which bias explains most).
- ``locality_patch_size`` (generalization, largest N, σ = 0.1): P*, the patch size at which the
  local reference agrees best with the network (per replicate, then averaged). Descriptive.
- ``locality_radius_px`` (generalization, largest N, σ = 0.4): the radius around an output pixel
  that holds 90% of its Jacobian row's energy (the ``reference_agreement`` metric's
  ``locality_radius``, median over sampled rows, mean over its images and the S1 and S2
  models). Read at σ = 0.4, where networks average the most: at small σ a network near
  the identity has a tiny radius without being local. Descriptive.
- ``optimality_gap_db`` (geometry): 10 log10(MSE/MSE*) against the class's exact optimum,
  averaged over σ and over the classes that declare one. Lower is better.
- ``kl_bound`` (geometry): ∫ Δ(σ) σ⁻³ dσ (nats per pixel), averaged over those classes. Lower
  is better.
- ``tangent_energy_fraction`` (geometry, smallest σ): the fraction of the Jacobian's energy in the
  true tangent space, averaged over the manifold classes. Higher is better.
- ``homogeneity_residual`` (geometry and calpha-*, the GAHB metric): ‖f(y) − ∇f(y) y‖/‖f(y)‖ on
  noisy test images, averaged over the classes and σ of the experiments that measure the GAHB.
  0 for a bias-free (homogeneous) network, where f is the adaptive linear shrinkage
  f(y) = ∇f(y) y the paper reads. Descriptive.
- ``calpha_slope_error`` (calpha-*): |slope − s/(s+1)| of the output-vs-input PSNR slope, s the
  images' Hölder exponent (α in the Hölder convention, where s/(s+1) = α/(α+1); α − 1 for the
  regions in the public code's), averaged over the α whose fit range is calibrated (the exact
  Wiener filter's slope over the same σ grid within
  :data:`~gahb_bench.metrics.psnr_slopes.CALIBRATION_TOLERANCE` of s/(s+1)). An α whose range
  is not, or whose optimum has no calibration (s = 0: paper-code α = 1, where the image-mean
  denoiser's flat slope of 0 would score perfectly), is left out and named in the note.
  Lower is better.
- ``undertrained_fraction`` (every experiment with denoising curves): the fraction of its done
  training cells that :func:`gahb_bench.convergence.cell_verdict` flags as not trained enough
  (loss still falling over the last tenth of training, worse than the identity on its training
  images at the smallest σ, or, for a cell that generalizes, a test curve more than 0.3 dB below
  the image-mean baseline or below the same network trained on a smaller N), the flagged cells
  in the note; cells without a loss profile are not judged (counted in the note). Lower is
  better: a score read on such cells measures the budget as much as the architecture (an
  undertrained network fits neither split, and its train − test gap looks like generalization).
  The generalization scores read at the largest N say so in their notes when its cells there
  are flagged.
- ``calpha_slope_gain_over_bandlets`` (calpha-*): how much closer to the optimal slope the
  network's slope is than the bandlet baseline's on the same images, |s_b − s*| − |s − s*|, over
  the same calibrated α. Higher is better (a slope above the optimum, as a near-identity
  network's, is not rewarded).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from gahb_bench import store
from gahb_bench.bootstrap import clopper_pearson, interval_of, mean_interval, resample
from gahb_bench.metrics.psnr_slopes import calibration_problem


@dataclass(frozen=True)
class Score:
    """The definition of one headline score."""

    key: str
    title: str
    formula: str
    units: str
    direction: str  # "lower", "higher", "zero" (closer to 0 is better) or "none"
    experiment: str


@dataclass
class Value:
    """One score of one store: ``value`` (None with ``note`` when it cannot be computed) and,
    where the store has replicates or an interval, ``low``–``high``."""

    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


#: Reference denoisers scored by their agreement with the network (see ``reference_r2_<ref>``).
REFERENCES = ("empirical", "gaussian", "local", "equivariant-local")
#: The noise level at which agreement and locality are read.
AGREEMENT_SIGMA = 0.1
#: The noise level and energy fraction at which the Jacobian locality radius is read.
LOCALITY_SIGMA, LOCALITY_ENERGY = 0.4, 0.9

SCORES = (
    Score("excess_gap_db", "Excess train−test gap at the largest N", "mean over σ of PSNR_train − PSNR_test, "
          "minus the same for a training-free denoiser", "dB", "zero", "generalization"),
    Score("memorization_excess_gap_db", "Excess train−test gap at the smallest N", "as excess_gap_db, at the "
          "smallest N", "dB", "none", "generalization"),
    Score("copy_fraction", "Copies among the samples at the smallest N", "fraction of samples x with "
          "‖x − NN₁‖/‖x − NN₂‖ < 1/3 (NN₁, NN₂ its nearest training images), mean over the S1 and S2 models, "
          "smallest N ≥ 2", "", "none", "generalization"),
    Score("memorizer_distance", "Distance to the memorizer at the smallest N", "E‖f(y) − f_N(y)‖² / "
          "E‖f_N(y) − x‖², f_N the empirical optimum of the training subset, σ = 0.1, smallest N ≥ 2 "
          "(0: the memorizer, about 1: as far from it as the test image)", "", "none", "generalization"),
    Score("n_star", "N*: samples of S1 and S2 models agree", "smallest N with median centred paired "
          "similarity ≥ 0.9, unpaired similarity below it, both models beating the identity", "images", "lower",
          "generalization"),
    Score("model_variance_db", "Model variance at the largest N", "mean over σ of 10 log10 E‖f₁(y) − f₂(y)‖²/(Dσ²)",
          "dB", "lower", "generalization"),
    *(Score(f"reference_r2_{ref}", f"Agreement with the {ref} reference", f"median centred r² of f_{ref} against "
            f"the network, σ = {AGREEMENT_SIGMA:g}, largest N", "", "none", "generalization") for ref in REFERENCES),
    Score("locality_patch_size", "Locality P*", f"patch size at which the local reference agrees best, "
          f"σ = {AGREEMENT_SIGMA:g}, largest N", "pixels", "none", "generalization"),
    Score("locality_radius_px", "Jacobian locality radius", f"radius holding {LOCALITY_ENERGY:.0%} of a Jacobian "
          f"row's energy, σ = {LOCALITY_SIGMA:g}, largest N", "pixels", "none", "generalization"),
    Score("optimality_gap_db", "Optimality gap", "mean over σ and classes with an optimum of 10 log10(MSE/MSE*)",
          "dB", "lower", "geometry"),
    Score("kl_bound", "KL bound", "∫ E‖f(y) − f*(y)‖²/D σ⁻³ dσ, mean over classes with an optimum",
          "nats/pixel", "lower", "geometry"),
    Score("tangent_energy_fraction", "Tangent energy fraction", "‖J P_T‖²/‖J‖² (the Jacobian's energy acting "
          "on the tangent space) at the smallest σ, mean over "
          "manifold classes", "", "higher", "geometry"),
    Score("homogeneity_residual", "Homogeneity residual", "‖f(y) − ∇f(y) y‖/‖f(y)‖, mean over the classes and σ "
          "of the GAHB metric", "", "none", "geometry, calpha-*"),
    Score("calpha_slope_error", "C^α slope error", "|slope − s*| with s* = s/(s+1), s the images' Hölder exponent "
          "(α/(α+1) in the Hölder convention), mean over the α whose fit range is calibrated", "", "lower", "calpha-*"),
    Score("calpha_slope_gain_over_bandlets", "C^α slope: gain over bandlets (distance to the optimum)",
          "|slope_bandlets − s*| − |slope − s*|, same images, mean over the calibrated α", "", "higher", "calpha-*"),
    Score("undertrained_fraction", "Cells not trained enough", "fraction of the done training cells the "
          "convergence check flags (loss still falling, worse than the identity at the smallest σ, or below "
          "the image-mean baseline or a smaller-N network)", "", "lower", "every experiment"),
)

BY_KEY = {score.key: score for score in SCORES}


def compute(experiments: Mapping[str, tuple[Any, Mapping[str, dict]]]) -> dict[str, Value]:
    """Every score of :data:`SCORES` from ``{experiment: (Dataset, summary)}`` (the summary as
    :func:`gahb_bench.summaries.read` returns it: metric → name → value)."""
    out: dict[str, Value] = {}
    gen = experiments.get("generalization")
    for key, fn in _GENERALIZATION.items():
        out[key] = fn(*gen) if gen is not None else Value(None, note="no generalization experiment")
    geometry = experiments.get("geometry")
    out["optimality_gap_db"] = _summary_mean(geometry, "optimality", "gap_db_model/")
    out["kl_bound"] = _summary_mean(geometry, "optimality", "kl_bound_model/")
    out["tangent_energy_fraction"] = _tangent(geometry)
    out["homogeneity_residual"] = _homogeneity(experiments)
    calpha = [(k, v) for k, v in sorted(experiments.items()) if k.startswith("calpha-")]
    out["calpha_slope_error"] = _slopes(calpha, lambda s: abs(s["slope"] - s["optimal_slope"]),
                                        _slope_error_interval)
    out["calpha_slope_gain_over_bandlets"] = _slopes(
        calpha, lambda s: abs(s["slope_bandlets"] - s["optimal_slope"]) - abs(s["slope"] - s["optimal_slope"]),
        _gain_interval)
    out["undertrained_fraction"], flagged = _undertrained(experiments)
    if gen is not None and gen[0] is not None:
        _mark_flagged_largest_n(out, gen[0], flagged.get("generalization", set()))
    return out


def baseline_scores(experiments: Mapping[str, tuple[Any, Mapping[str, dict]]]) -> dict[str, dict[str, Value]]:
    """{baseline: {score: Value}} for the scores that apply to a training-free denoiser: the
    optimality gap, the KL bound and the C^α slope error, read from the same summaries."""
    out: dict[str, dict[str, Value]] = {}
    geometry = experiments.get("geometry")
    names = set()
    if geometry is not None:
        names |= {k.split("/")[0][len("gap_db_"):] for k in geometry[1].get("optimality", {})
                  if k.startswith("gap_db_")} - {"model"}
    calpha = [(k, v) for k, v in sorted(experiments.items()) if k.startswith("calpha-")]
    for _, (_, summary) in calpha:
        names |= {k[len("slope_"):] for k in summary.get("psnr_slopes", {}) if k.startswith("slope_")
                  and k not in ("slope_low", "slope_high")}
    for name in sorted(names):
        out[name] = {
            "optimality_gap_db": _summary_mean(geometry, "optimality", f"gap_db_{name}/"),
            "kl_bound": _summary_mean(geometry, "optimality", f"kl_bound_{name}/"),
            "calpha_slope_error": _slopes(calpha, lambda s, n=name: abs(s[f"slope_{n}"] - s["optimal_slope"])),
        }
    return out


def _done_ns(ds, status_var: str = "status") -> tuple[str, list[int]]:
    """(the first image class, the N whose cells or pairs ``status_var`` are done for every
    subset and seed), N ascending."""
    cls = ds.image_class.values[0]
    status = ds[status_var].isel(arch=0) if "arch" in ds[status_var].dims else ds[status_var]
    status = status.sel(image_class=cls)
    return cls, [int(n) for n in ds.n_train.values if bool((status.sel(n_train=n) == store.DONE).all())]


def _excess(ds, summary, which: str) -> Value:
    if "psnr_gap_floor" not in ds:
        return Value(None, note="the experiment stores no training-free floor")
    cls, done = _done_ns(ds)
    if not done:
        return Value(None, note="no N done on every subset")
    n = max(done) if which == "largest" else min(done)
    cell = ds.isel(arch=0).sel(image_class=cls, n_train=n)
    excess = (cell.psnr_gap - cell.psnr_gap_floor).values.ravel()
    return _over_replicates(excess, f"N = {n}, {cls}", " (each a mean over the test images, whose sampling it "
                                                       "leaves out)")


def _over_replicates(values: np.ndarray, where: str, what: str = "") -> Value:
    """The mean of one value per replicate and, with fewer than :data:`FEW_REPLICATES`, their
    range (min–max), else their 95% bootstrap interval (:func:`gahb_bench.bootstrap.mean_interval`).
    ``what`` says what the interval leaves out."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if not values.size:
        return Value(None, note=f"{where}; no replicate computed")
    if np.isinf(values).any():  # e.g. the model variance of two identical models: −∞ dB
        return Value(float(np.mean(values)), note=f"{where}; {int(np.isinf(values).sum())} of {values.size} "
                                                   "replicates not finite")
    if values.size == 1:
        return Value(float(values[0]), note=f"{where}; one replicate, no range{what}")
    if values.size < FEW_REPLICATES:
        return Value(float(np.mean(values)), float(np.min(values)), float(np.max(values)),
                     f"{where}; range over {values.size} replicates (subsets, seeds){what}")
    low, high = mean_interval(values)
    return Value(float(np.mean(values)), low, high,
                 f"{where}; 95% bootstrap interval over {values.size} replicates (subsets, seeds){what}")


#: Below this many replicates a score read over replicates alone shows their min–max, called a
#: range: the percentile interval of so few is about it, and of two it covers the mean half the time.
FEW_REPLICATES = 5


def _replicates(values, done) -> np.ndarray:
    """The done replicates of one N's ``values`` (a DataArray over ``subset`` and ``seed``, or
    ``seed`` alone for a pair, and the axes after them): an array (replicate, …), replicates in
    (subset, seed) order; ``done`` is a boolean DataArray over the same replicate dims."""
    dims = [d for d in ("subset", "seed") if d in done.dims]
    stacked = values.stack(replicate=dims).transpose("replicate", ...)
    ok = done.stack(replicate=dims).transpose("replicate").values.astype(bool)
    return np.asarray(stacked.values, dtype=np.float64)[ok]


def _image_interval(data: np.ndarray, statistic) -> tuple[float, float, float]:
    """(low, high, dropped): the 95% bootstrap interval of ``statistic(data, replicates,
    images)`` over the replicates and the images (the last axis of ``data``), each resampled with
    replacement, and the fraction of resamples whose statistic was not finite (dropped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples: dropped as non-finite
        stats = resample(lambda r, i: statistic(data, r, i), (data.shape[0], data.shape[-1]))
    low, high = interval_of(stats)
    return low, high, float(np.mean(~np.isfinite(stats))) if stats.size else 0.0


def _finite(*values: float) -> list[float | None]:
    return [x if x is not None and math.isfinite(x) else None for x in values]


def _copy_fraction(ds, summary) -> Value:
    """The copy fraction of the S1 and S2 models' samples at the smallest N ≥ 2 whose pair is
    done (a copy needs a nearest and a second nearest training image), with its 95% bootstrap
    interval over the seeds and the samples (a sample index resampled for both models, held
    fixed: their samples share the noise); below :data:`FEW_COPIES` copies or non-copies, joined
    with the exact binomial interval of that count among one model's samples (the two models'
    samples are not independent draws)."""
    if not hasattr(ds, "data_vars") or "copy_ratio" not in ds or "pair_metric_status" not in ds:
        return Value(None, note="no copies measured (the paired_samples metric) in the experiment")
    from gahb_bench.metrics.paired_samples import DEFAULTS

    settings = json.loads(ds.attrs.get("metric_settings", "{}")).get("paired_samples", {})
    threshold = float(settings.get("copy_threshold", DEFAULTS["copy_threshold"]))
    cls = ds.image_class.values[0]
    done = ds.pair_metric_status.isel(arch=0).sel(image_class=cls, pair_metric="paired_samples") == store.DONE
    ratio = ds.copy_ratio.isel(arch=0).sel(image_class=cls)
    passed = []
    largest_done = max((int(m) for m in ds.n_train.values if bool(done.sel(n_train=m).any())), default=None)
    for n in sorted(int(n) for n in ds.n_train.values if n >= 2):
        if not bool(done.sel(n_train=n).any()):
            passed.append(f"N = {n} not done")
            continue
        data = _replicates(ratio.sel(n_train=n), done.sel(n_train=n))  # (seed, model, sample)
        value = copy_fraction_of(data, threshold)
        if not math.isfinite(value):
            passed.append(f"at N = {n} a model drew no sample")
            continue
        low, high, _ = _image_interval(data, lambda d, r, i: copy_fraction_of(d[r][..., i], threshold))
        how = f"95% bootstrap interval over {data.shape[0]} seed(s) and {data.shape[-1]} samples"
        valid = int(np.isfinite(data).sum(axis=-1).min())
        # the mean count per model, value · valid, may fall between two counts: the lower bound
        # of the one below, the upper bound of the one above
        k_low, k_high = math.floor(value * valid + 1e-9), math.ceil(value * valid - 1e-9)
        if min(k_high, valid - k_low) < FEW_COPIES:  # the bootstrap of a rare event is too narrow
            exact = clopper_pearson(k_low, valid)[0], clopper_pearson(k_high, valid)[1]
            low, high = (exact if not math.isfinite(low) else (min(low, exact[0]), max(high, exact[1])))
            count = f"{k_low}" if k_low == k_high else f"{k_low} to {k_high}"
            how += (f", joined with the exact binomial 95% interval of {count} in {valid} samples (of one model: "
                    "the two models' samples share their noise)")
        failed = int((~np.isfinite(data)).sum())
        if _no_small_n(ds, n):
            return Value(None, note=_no_small_n_note(ds, n, f"{number(value)} [{number(low)}, {number(high)}]"))
        only = _ONLY_LARGEST if n == largest_done else ""
        notes = [f"N = {n}{only}, {cls}", how, f"a copy: ratio below {threshold:.3g}",
                 f"{failed} failed samples left out" if failed else "", "; ".join(passed)]
        return Value(value, *_finite(low, high), "; ".join(filter(None, notes)))
    return Value(None, note="; ".join(passed + ["no pair with N ≥ 2 done (a copy needs two training images)"]))


#: The note of a score read at the smallest N ≥ 2 when that N is also the largest done.
_ONLY_LARGEST = " (the only N ≥ 2 done, the largest: no small N is measured)"


def _no_small_n(ds, n: int) -> bool:
    """Whether a score read "at the smallest N" at N = ``n`` has no small N to be read at: ``n``
    is the experiment's largest N and its grid holds no N from 2 below it (as ``smoke``'s grid,
    N = 1 and all). The value there is the generalizing network's, under a memorization label,
    so it is not given. A grid of one N is its own smallest; a grid whose smaller N ≥ 2 are
    only not done yet keeps its value (the note names them)."""
    grid = [int(m) for m in ds.n_train.values]
    return len(grid) > 1 and n == max(grid) and not any(2 <= m < n for m in grid)


def _no_small_n_note(ds, n: int, value: str) -> str:
    grid = ", ".join(str(int(m)) for m in ds.n_train.values)
    return (f"the experiment measures no N between 2 and its largest (N = {grid}): not a small N; "
            f"at N = {n}, the largest: {value}")

#: Below this many copies (or non-copies) a copy fraction's interval includes the exact binomial
#: one: resampling a handful of copies understates how far the fraction could be.
FEW_COPIES = 10


def copy_fraction_of(ratios: np.ndarray, threshold: float) -> float:
    """The copy fraction of ``ratios`` (seed, model, sample) as the metric computes it: per model
    the fraction of its valid (finite) samples below ``threshold`` (NaN for a model with none),
    then the mean over models and seeds."""
    valid = np.isfinite(ratios).sum(axis=-1)
    copies = ((ratios < threshold) & np.isfinite(ratios)).sum(axis=-1)
    return float(np.where(valid > 0, copies / np.maximum(valid, 1), np.nan).mean())


def _memorizer_distance(ds, summary) -> Value:
    """The relative distance to the empirical optimum f_N at σ = :data:`MEMORIZATION_SIGMA`
    (linear in log σ between the metric's grid points) and the smallest N ≥ 2 where the metric
    is done (f_1 returns its one image whatever the input: a network close to it on test images
    has learned a constant, which measured networks at N = 1 do only at large σ), per replicate;
    their mean and range (:func:`_over_replicates`); the note gives the same at the largest N
    done, the generalizing contrast."""
    if not hasattr(ds, "data_vars") or "relative_distance_to_empirical" not in ds or "metric_status" not in ds:
        return Value(None, note="no memorization metric in the experiment")
    cls = ds.image_class.values[0]
    done = store.metric_done(ds, "memorization").sel(image_class=cls)
    ns = [int(n) for n in ds.n_train.values if n >= 2 and bool(done.sel(n_train=n).any())]
    sigmas = np.asarray(ds.sigma.values, dtype=np.float64)
    if not ns:
        return Value(None, note="the memorization metric is done at no N ≥ 2")
    if not sigmas.min() <= MEMORIZATION_SIGMA <= sigmas.max():
        return Value(None, note=f"the memorization metric's σ grid does not hold {MEMORIZATION_SIGMA:g}")

    def at(n: int) -> np.ndarray:
        data = _replicates(ds.relative_distance_to_empirical.isel(arch=0).sel(image_class=cls, n_train=n),
                           done.sel(n_train=n))
        return np.array([np.interp(np.log(MEMORIZATION_SIGMA), np.log(sigmas), row) for row in data])
    only = _ONLY_LARGEST if len(ns) == 1 else ""
    value = _over_replicates(at(min(ns)), f"N = {min(ns)}{only}, {cls}, σ = {MEMORIZATION_SIGMA:g}")
    if _no_small_n(ds, min(ns)):
        shown = "no replicate computed" if value.value is None else number(value.value)
        return Value(None, note=_no_small_n_note(ds, min(ns), f"{shown} (σ = {MEMORIZATION_SIGMA:g})"))
    if len(ns) > 1 and value.value is not None:
        value.note += f"; at the largest N ({max(ns)}): {number(float(np.nanmean(at(max(ns)))))}"
    return value


#: The noise level at which the distance to the memorizer is read: mid-grid, where f_N still
#: returns a training image (at σ → ∞ every denoiser returns the mean, at σ → 0 the input).
MEMORIZATION_SIGMA = 0.1


def _n_star(ds, summary) -> Value:
    if "paired_samples" not in summary:
        return Value(None, note="no paired_samples summary")
    if "pair_status" not in ds or not bool((ds["pair_status"] == 1).any()):
        return Value(None, note="no pair done")
    values = summary["paired_samples"]
    key = "n_star" if "n_star" in values else min((k for k in values if k.startswith("n_star/")), default="n_star")
    n = values.get(key)
    cls = key.split("/", 1)[1] if "/" in key else str(ds.image_class.values[0])
    if not bool((ds["pair_status"].isel(arch=0).sel(image_class=cls) == 1).any()):
        return Value(None, note=f"no pair of {cls} done")
    where = f" ({cls})" if "/" in key else ""
    note = "" if n is not None else "not reached on the grid"
    rejected = {"collapsed_n": "so do unpaired ones (a shared collapse, not generalization)",
                "not_denoising_n": "the models are worse than the identity (their samples are not images)"}
    for name, why in rejected.items():
        at = values.get(key.replace("n_star", name, 1))
        if at is not None and (n is None or at < n):
            note += ("; " if note else "") + f"at N = {at:g} the S1 and S2 samples agree but {why}"
    low, high, note_range = _n_star_range(ds, cls, n, values.get("similarity_level", 0.9))
    note += ("; " if note else "") + note_range
    return Value(None if n is None else float(n), low, high, note + where)


def _n_star_range(ds, cls: str, n: float | None, level: float) -> tuple[float | None, float | None, str]:
    """(low, high, note): the range of N* over the samples of these trained models (the medians'
    95% bootstrap intervals over samples, :func:`gahb_bench.metrics.paired_samples.n_star_interval`;
    training, subsets and seeds held fixed), and at the deciding N (N*, else the largest N with a
    finite median) the median and its interval."""
    from gahb_bench.metrics.paired_samples import n_star_interval

    earliest, latest, intervals, medians = n_star_interval(ds, cls)
    grid = [float(m) for m in ds.n_train.values]
    finite = [i for i, m in enumerate(medians) if np.isfinite(m)]
    if not finite:
        return None, None, f"no pair of {cls} with a finite median similarity"
    at = grid.index(n) if n is not None and grid.index(n) in finite else finite[-1]
    lo, hi = intervals[at]
    note = (f"at N = {grid[at]:g} the median similarity is {medians[at]:.3f}, 95% bootstrap interval over the "
            f"samples of these models [{lo:.3f}, {hi:.3f}]")
    if lo < level <= hi:
        note += f", which holds the level {level:g}: these samples do not decide it"
    if n is None:
        if earliest is not None:
            note += f"; at the intervals' tops the level is reached at N = {earliest:g}"
        return None, None, note
    if earliest is None:
        return None, None, note
    return earliest, latest, note + (f"; range [{earliest:g}, {latest:g}]: N* with every median at its interval's "
                                     "top, and at its bottom (not over training or seeds)" if latest is not None else
                                     "; at the intervals' bottoms the level is not reached on the grid")


def _model_variance(ds, summary) -> Value:
    if "mean_model_variance_db" not in ds:
        return Value(None, note="no model_variance in the experiment")
    cls, done = _done_ns(ds, "pair_status")
    if not done:
        return Value(None, note="no pair done")
    n = max(done)
    if "model_variance_per_image" in ds:
        return _model_variance_over_images(ds, cls, n)
    values = ds.mean_model_variance_db.sel(image_class=cls, n_train=n)
    values = values.isel(arch=0) if "arch" in values.dims else values
    value = _over_replicates(values.values, f"N = {n}, {cls}")
    if value.low is None:  # one seed: a store before battery 0.14 keeps each pair's mean over test images only
        value.note += " (the store keeps one mean over the test images per pair)"
    return value


def _model_variance_over_images(ds, cls, n: int) -> Value:
    """The headline model variance at N = ``n`` from each test image's ‖f₁ − f₂‖²/D, with its
    95% bootstrap interval over the pairs (seeds) and the test images: an image index is drawn
    once for every σ (the same images are denoised at each σ), and the statistic is the stored
    headline's, mean over pairs of mean over σ of 10 log10 (mean over images / σ²)."""
    from gahb_bench.metrics.model_variance import variance_db

    per_image = ds.model_variance_per_image.isel(arch=0).sel(image_class=cls, n_train=n)
    done = ds.pair_status.isel(arch=0).sel(image_class=cls, n_train=n) == store.DONE
    data = _replicates(per_image.transpose("seed", "sigma", "variance_image"), done)  # (pair, sigma, image)

    def headline(d, r, i):
        return float(variance_db(d[r][..., i].mean(axis=-1), ds.sigma.values).mean())

    value = headline(data, np.arange(data.shape[0]), np.arange(data.shape[-1]))
    low, high, _ = _image_interval(data, headline)
    low, high = _finite(low, high)
    return Value(value, low, high, f"N = {n}, {cls}; 95% bootstrap interval over {data.shape[0]} pair(s) (seeds) "
                                   f"and {data.shape[-1]} test images" + (
                                       "; one pair: the spread over S1/S2 draws is not in it"
                                       if data.shape[0] == 1 else ""))


def _locality_radius(ds) -> Value:
    if "locality_radius" not in ds:
        return Value(None, note="no Jacobian locality radius in the experiment")
    sigmas, fractions = ds.reference_sigma.values, ds.energy_fraction.values
    if not np.isclose(sigmas, LOCALITY_SIGMA).any() or not np.isclose(fractions, LOCALITY_ENERGY).any():
        return Value(None, note=f"not measured at sigma {LOCALITY_SIGMA:g}, energy {LOCALITY_ENERGY:g}")
    cls, done = _done_ns(ds)
    if not done:
        return Value(None, note="no N done on every subset")
    n = max(done)
    radius = ds.locality_radius.isel(arch=0).sel(image_class=cls, n_train=n).isel(
        reference_sigma=int(np.argmin(abs(sigmas - LOCALITY_SIGMA))),
        energy_fraction=int(np.argmin(abs(fractions - LOCALITY_ENERGY))))
    data = _replicates(radius, ds["status"].isel(arch=0).sel(image_class=cls, n_train=n) == store.DONE)
    data = data[np.isfinite(data).any(axis=-1)]
    if not data.size:
        return Value(None, note=f"not computed at N = {n}")
    low, high, _ = _image_interval(data, _mean_of_means)
    return Value(_mean_of_means(data, *map(np.arange, (data.shape[0], data.shape[-1]))), *_finite(low, high),
                 f"N = {n}, {cls}; mean of {data.shape[-1]} test images; {_IMAGES_INTERVAL.format(*data.shape)}")


#: The note of an interval over replicates and test images.
_IMAGES_INTERVAL = "95% bootstrap interval over {0} replicates (subsets, seeds) and the test images"


def _mean_of_means(data, r, i) -> float:
    """The mean over replicates ``r`` of the mean over images ``i`` (NaN ignored)."""
    return float(np.nanmean(np.nanmean(data[np.ix_(r, i)], axis=-1)))


def _agreement(key: str) -> Callable:
    """The score ``key`` (e.g. ``r2_gaussian``) of the reference agreement summary at σ =
    :data:`AGREEMENT_SIGMA` and the largest N at which any reference was compared: every
    reference is read at the same N (one not computed there, e.g. ELS above its ``max_train``,
    is None)."""
    def score(ds, summary) -> Value:
        values = summary.get("reference_agreement", {})
        found = _agreement_keys(values)
        if not found:
            return Value(None, note=f"no reference agreement at sigma {AGREEMENT_SIGMA:g}")
        n = max(found.values())
        value = values.get(f"{key}_N{n}_sigma{AGREEMENT_SIGMA:g}")
        if value is None:
            return Value(None, note=f"not computed at N = {n}")
        data, statistic = _agreement_data(ds, key, n)
        if data is None or not data.size:
            return Value(float(value), note=f"N = {n}")
        low, high, dropped = _image_interval(data, statistic)
        if isinstance(statistic, PStar):
            of = (f"the patch size of the best median of {data.shape[-1]} test images (an argmax: the interval is "
                  "indicative)")
            tied = statistic.tied / max(statistic.calls, 1)
            ties = (f"; in {tied:.0%} of the resamples a replicate tied (no best size): P* of the others"
                    if tied else "")
        else:
            of = f"median of {data.shape[-1]} test images"
            ties = f"; {dropped:.0%} of the resamples had no finite median, left out" if dropped else ""
        return Value(float(value), *_finite(low, high),
                     note=f"N = {n}; {of}; {_IMAGES_INTERVAL.format(*data.shape)}{ties}")
    return score


def _agreement_data(ds, key: str, n: int) -> tuple[np.ndarray | None, Callable | None]:
    """(the per-image values behind the agreement summary ``key`` at N = ``n`` and σ =
    :data:`AGREEMENT_SIGMA`, as (replicate, …, image), and the summary's statistic of them:
    the median over images then the mean over replicates of ``r2_<ref>``; P*, the patch size of
    the best median, averaged over replicates, of ``best_patch_local``), or (None, None) when
    the experiment does not hold them."""
    if not hasattr(ds, "data_vars") or "agreement" not in ds or "metric_status" not in ds:
        return None, None
    sigmas = ds.reference_sigma.values
    if not np.isclose(sigmas, AGREEMENT_SIGMA).any():
        return None, None
    cls = ds.image_class.values[0]
    done = store.metric_done(ds, "reference_agreement").sel(image_class=cls, n_train=n)
    at = {"image_class": cls, "n_train": n}
    sigma = {"reference_sigma": int(np.argmin(abs(sigmas - AGREEMENT_SIGMA)))}
    if key.startswith("best_patch_"):
        ref = key[len("best_patch_"):]
        if ref not in ds.patch_reference.values:
            return None, None
        data = _replicates(ds.patch_agreement.isel(arch=0).sel(**at, patch_reference=ref).isel(**sigma), done)
        return data, PStar(ds.patch_size.values)
    ref = key[len("r2_"):]
    if ref not in ds.reference.values:
        return None, None
    data = _replicates(ds.agreement.isel(arch=0).sel(**at, reference=ref).isel(**sigma), done)

    def median_r2(data, r, i) -> float:
        return float(np.nanmean(np.nanmedian(data[np.ix_(r, i)], axis=-1)))
    return data, median_r2


class PStar:
    """P* as the summary computes it from per-image agreements (replicate, patch size, image):
    per replicate the patch size of the best median over images
    (:func:`gahb_bench.metrics.reference_agreement.best_patch_size`, NaN on a tie), then the mean
    over the replicates that have one. Counts its calls and those where some replicate tied."""

    def __init__(self, sizes) -> None:
        self.sizes, self.calls, self.tied = np.asarray(sizes), 0, 0

    def __call__(self, data: np.ndarray, r: np.ndarray, i: np.ndarray) -> float:
        from gahb_bench.metrics.reference_agreement import best_patch_size

        best = np.array([best_patch_size(np.nanmedian(data[k][:, i], axis=-1), self.sizes) for k in r])
        self.calls += 1
        self.tied += int(np.isnan(best).any())
        return float(np.nanmean(best)) if np.isfinite(best).any() else float("nan")


def _agreement_keys(values: Mapping[str, Any]) -> dict[str, int]:
    """{summary key: its N} of the agreement keys (``r2_REF_N{n}_sigma{σ}``) at AGREEMENT_SIGMA."""
    suffix = f"_sigma{AGREEMENT_SIGMA:g}"
    out = {}
    for k in values:
        if k.startswith("r2_") and k.endswith(suffix) and "/" not in k and "_N" in k:
            n = k[:-len(suffix)].rsplit("_N", 1)[1]
            if n.isdigit():
                out[k] = int(n)
    return out


_GENERALIZATION: dict[str, Callable] = {
    "excess_gap_db": lambda ds, s: _excess(ds, s, "largest"),
    "memorization_excess_gap_db": lambda ds, s: _excess(ds, s, "smallest"),
    "copy_fraction": _copy_fraction,
    "memorizer_distance": _memorizer_distance,
    "n_star": _n_star,
    "model_variance_db": _model_variance,
    **{f"reference_r2_{ref}": _agreement(f"r2_{ref}") for ref in REFERENCES},
    "locality_patch_size": _agreement("best_patch_local"),
    "locality_radius_px": lambda ds, s: _locality_radius(ds),
}


def _undertrained(experiments: Mapping[str, tuple[Any, Mapping[str, dict]]]) -> tuple[Value, dict[str, set]]:
    """(the ``undertrained_fraction`` score, {experiment: {(class, N, subset, seed) flagged}}).
    A cell with no loss profile (a store written before it was recorded, or fewer than 20 steps)
    and no other reason is unknown, not undertrained: it is left out of the fraction and counted
    in the note."""
    from gahb_bench.convergence import NO_PROFILE, cell_verdicts

    flagged: dict[str, set] = {}
    labels, judged, unknown = [], 0, 0
    for name, (ds, _) in sorted(experiments.items()):
        if ds is None or "psnr" not in ds:
            continue
        for (cls, n, sub, seed), why in cell_verdicts(ds.isel(arch=0) if "arch" in ds.dims else ds):
            reasons = [r for r in why.split("; ") if r and r != NO_PROFILE]
            if why and not reasons:
                unknown += 1
                continue
            judged += 1
            if reasons:
                flagged.setdefault(name, set()).add((cls, n, sub, seed))
                labels.append(f"{name}/{cls} N={n} S{sub + 1} seed={seed}")
    unknown_note = f"; {unknown} without a loss profile (not judged)" if unknown else ""
    if not judged:
        return Value(None, note="no trained cell done" + unknown_note), flagged
    note = (f"{len(labels)} of {judged} cells" + (": " + ", ".join(labels[:6]) + (", …" if len(labels) > 6 else "")
                                                  if labels else "") + unknown_note)
    return Value(len(labels) / judged, note=note), flagged


#: The generalization scores read at its largest N, whose notes name the flagged cells there.
_AT_LARGEST_N = ("excess_gap_db", "model_variance_db", "locality_radius_px", "locality_patch_size",
                 *(f"reference_r2_{ref}" for ref in REFERENCES))


def _mark_flagged_largest_n(out: dict[str, Value], ds, flagged: set) -> None:
    """Append to the notes of the scores read at the generalization experiment's largest done N
    (those whose note names that N, for its first class, as they are read) which of its cells
    are flagged as not trained enough."""
    if not flagged:
        return
    cls, done = _done_ns(ds)
    if not done:
        return
    n = max(done)
    at_n = [f"S{sub + 1} seed={seed}" for c, m, sub, seed in sorted(flagged) if c == str(cls) and m == n]
    if not at_n:
        return
    names = re.compile(rf"\bN = {n}\b")
    for key in _AT_LARGEST_N:
        v = out.get(key)
        if v is not None and v.value is not None and names.search(v.note):
            out[key] = Value(v.value, v.low, v.high, f"{v.note}; N = {n} not trained enough: {', '.join(at_n)}")


def _summary_mean(experiment, metric: str, prefix: str) -> Value:
    if experiment is None:
        return Value(None, note="no geometry experiment")
    values = {k[len(prefix):]: v for k, v in experiment[1].get(metric, {}).items() if k.startswith(prefix)}
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return Value(None, note=f"no {prefix.rstrip('/')} in the {metric} summary")
    return Value(float(np.mean(list(finite.values()))), min(finite.values()), max(finite.values()),
                 "range over " + ", ".join(sorted(finite)))


def _homogeneity(experiments: Mapping[str, tuple[Any, Mapping[str, dict]]]) -> Value:
    """The mean of the GAHB summaries' ``homogeneity_residual_sigma*`` over every experiment,
    class and σ, with their range."""
    prefix = "homogeneity_residual_sigma"
    values = {f"{name}:{k[len(prefix):]}": v for name, (_, summary) in sorted(experiments.items())
              for k, v in summary.get("gahb", {}).items()
              if k.startswith(prefix) and v is not None and math.isfinite(v)}
    if not values:
        return Value(None, note="no homogeneity residual in the GAHB summaries")
    return Value(float(np.mean(list(values.values()))), min(values.values()), max(values.values()),
                 f"range over {len(values)} (experiment, σ, class)")


def _tangent(experiment) -> Value:
    if experiment is None:
        return Value(None, note="no geometry experiment")
    values = experiment[1].get("tangent_space", {})
    prefix = "tangent_energy_fraction_model_sigma"
    sigmas = sorted({float(k[len(prefix):].split("/")[0]) for k in values if k.startswith(prefix)})
    if not sigmas:
        return Value(None, note="no tangent_space summary")
    return _summary_mean(experiment, "tangent_space", f"{prefix}{sigmas[0]:g}/")


def _slopes(calpha: list, value: Callable[[dict], float],
            interval: Callable[[dict], tuple[float, float]] | None = None) -> Value:
    """The mean of ``value(summary)`` over the C^α experiments ``calpha`` ((name, (Dataset,
    summary)) pairs) whose fit range is calibrated
    (:func:`gahb_bench.metrics.psnr_slopes.calibration_problem`); with one such α,
    ``interval(summary)`` maps the slope's 95% bootstrap interval to the score's. The
    experiments left out are named in the note."""
    usable, left_out = [], []
    for name, (_, summary) in calpha:
        s = summary.get("psnr_slopes", {})
        if not s or any(s.get(k) is None for k in ("slope", "optimal_slope")):
            continue
        reason = calibration_problem(s)
        if reason:
            left_out.append(f"{name} ({reason})")
        else:
            usable.append(s)
    try:
        values = [value(s) for s in usable]
    except (KeyError, TypeError):
        return Value(None, note="a C^alpha summary lacks a baseline slope")
    unscored = f"not scored: {'; '.join(left_out)}" if left_out else ""
    if not values:
        return Value(None, note=unscored or "no C^alpha experiment with a slope")
    mean = float(np.mean(values))
    if len(usable) == 1 and interval is not None and usable[0].get("slope_low") is not None:
        low, high = interval(usable[0])
        return Value(mean, low, high, "; ".join(filter(None, ["from the slope's 95% bootstrap interval over test "
                                                              "images", unscored])))
    return Value(mean, note="; ".join(filter(None, [f"mean over {len(values)} alpha", unscored])))


def _slope_error_interval(s: dict) -> tuple[float, float]:
    """|slope − α/(α+1)| over the slope's interval: 0 at the low end when it holds the optimum."""
    low, high, best = s["slope_low"], s["slope_high"], s["optimal_slope"]
    ends = abs(low - best), abs(high - best)
    return (0.0 if low <= best <= high else min(ends)), max(ends)


def _gain_interval(s: dict) -> tuple[float, float]:
    """The gain over bandlets over the network slope's interval (the bandlet slope taken as
    exact: its own sampling error is not included)."""
    low, high = _slope_error_interval(s)
    bandlets = abs(s["slope_bandlets"] - s["optimal_slope"])
    return bandlets - high, bandlets - low


def read(path: Path) -> dict[str, tuple[Any, dict]]:
    """{experiment: (Dataset in memory, stored summary)} of the store at ``path``."""
    from gahb_bench import summaries

    return {name: (store.load_experiment(path, name), summaries.read(path, name)) for name in store.experiments(path)}


def to_json(values: Mapping[str, Value]) -> dict[str, dict]:
    """Plain JSON data: a value that is not finite (model variance of two identical models is
    −∞ dB) becomes null, with the reason in the note."""
    def finite(x):
        return x if x is None or math.isfinite(x) else None

    out = {}
    for k, v in values.items():
        note = v.note if v.value is None or math.isfinite(v.value) else f"{v.note}; not finite ({v.value})".lstrip("; ")
        out[k] = {"value": finite(v.value), "low": finite(v.low), "high": finite(v.high), "note": note}
    return out


def table(values: Mapping[str, Value]) -> list[str]:
    """The scorecard as text lines: title, value [interval or range], units, direction, note."""
    lines = ["scorecard (direction: lower/higher is better; none: descriptive)"]
    for key, v in values.items():
        score = BY_KEY[key]
        lines.append(f"  {score.title:<44} {shown(v.value, v.low, v.high):<26} {score.units:<11} "
                     f"{score.direction:<7} {v.note}")
    return lines


def number(value: float) -> str:
    """A number as text: whole numbers as integers (N* = 20911, not 2.091e+04), others to 4
    significant digits."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def shown(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """A score as text: ``n/a``, or the value and, where it has one, its range ``[low, high]``."""
    if value is None:
        return "n/a"
    return number(value) + (f" [{number(low)}, {number(high)}]" if low is not None and high is not None else "")


def summary_json(path: Path) -> str:
    """The scorecard of the store at ``path`` and of its baselines, as JSON."""
    experiments = read(path)
    return json.dumps({"scores": to_json(compute(experiments)),
                       "baselines": {b: to_json(v) for b, v in baseline_scores(experiments).items()}},
                      indent=2, sort_keys=True)
