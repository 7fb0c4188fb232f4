"""Metric ``reference_agreement``: how much of a trained network do simple inductive biases explain?

Each reference denoiser of the settings (registered through ``gahb_register_references``:
``empirical``, the memorizer; ``gaussian``, the linear model; ``local`` and
``equivariant-local``, the patch denoisers) is fitted on the cell's own training subset and
applied, knowing σ, to the same noisy test images as the network. At each σ of the settings:

* ``agreement`` — the centred r² of the reference as a prediction of the network's output,
  r² = 1 − ‖f_θ(y) − g(y)‖² / ‖f_θ(y) − mean f_θ(y)‖², per image
  (:mod:`gahb_bench.references.agreement`; summarized by median and IQR);
* ``residual_agreement`` — the r² of what the reference removes predicting what the network
  removes, 1 − ‖f_θ(y) − g(y)‖² / ‖(f_θ(y) − y) − mean(f_θ(y) − y)‖²
  (:func:`~gahb_bench.references.agreement.residual_r2`): the statistic to read at small σ;
* ``identity_agreement`` — the centred r² for the noisy input y itself: the trivial control. At
  small σ every sensible denoiser is close to y, so an agreement is only as high as it is
  above this (the identity's residual r² is 0 by construction);
* ``baseline_agreement`` and ``baseline_residual_agreement`` — both statistics for a generic,
  training-free denoiser (the baseline ``control_baseline``, wavelet hard thresholding by
  default): an agreement that a denoiser knowing nothing of the training set also reaches says
  only that both denoise;
* ``cross_agreement`` — the same between references (median over images: how different the
  hypotheses are on these images, so that an agreement can be read against it);
* ``optimum_agreement`` — on classes that declare their optimum f*, the centred r² of the network
  and of each reference as a prediction of f* (one denominator, f*'s, so the entries compare:
  which is closest to the optimum; NaN elsewhere);
* the **locality profile**: ``patch_agreement`` of each patch reference at each patch size P of a
  grid, and ``best_patch_size`` P*(σ), the P of the best median agreement (the grid's largest P
  means "at least"; P is a side length, where the radius below is a distance; NaN when the best
  median is tied, as at N = 1 where every P returns the one training image); and from the network's
  Jacobian, ``locality_radius``, the median over sampled output pixels of the radius holding a
  fraction q (``energy_fractions``) of the Jacobian row's energy
  (:func:`gahb_bench.jacobian.row_energy_radius`).

The noise is drawn by the cell's seed, not the architecture's, so every architecture and every
reference sees the same noisy images. References listed in ``max_train`` are not fitted (NaN) in
cells whose training subset is larger (``equivariant-local`` costs O(B N (HW)² P²)), nor those
whose ``max_dim`` is below the image's size (``gaussian``: D² memory).
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.jacobian import jacobian, row_energy_radius
from gahb_bench.references.agreement import centred_r2, median_iqr, residual_r2
from gahb_bench.store import metric_done, summary_key

DEFAULTS = {"sigmas": (0.05, 0.1, 0.2, 0.4), "n_images": 16,
            "references": ("empirical", "gaussian", "local", "equivariant-local"),
            "patch_references": ("local", "equivariant-local"), "patch_sizes": (3, 5, 7, 9),
            "max_train": {"equivariant-local": 2048}, "n_rows": 16, "energy_fractions": (0.5, 0.9),
            "control_baseline": "wavelet-hard"}
#: Two medians closer than this (relative) are a tie: no best patch size.
TIE = 1e-9
#: The network's entry in the ``compared`` dimension of ``optimum_agreement``.
MODEL = "model"


def coords(settings) -> dict:
    refs = list(settings["references"])
    return {"reference_sigma": np.asarray(settings["sigmas"], np.float64), "reference": refs,
            "other_reference": refs, "compared": [MODEL, *refs],
            "reference_image": np.arange(int(settings["n_images"])),
            "patch_reference": list(settings["patch_references"]),
            "patch_size": np.asarray(settings["patch_sizes"], np.int64),
            "energy_fraction": np.asarray(settings["energy_fractions"], np.float64)}


def _skipped(ctx, name: str, n_train: int, dim: int) -> bool:
    """True for a reference not computed in this cell: its training subset exceeds the
    settings' ``max_train`` for it, or its images exceed the reference's ``max_dim``."""
    from gahb_bench.registry import get_registry

    limit = dict(ctx.settings.get("max_train") or {}).get(name)
    max_dim = (ctx.registry or get_registry()).reference(name).max_dim
    return (limit is not None and n_train > int(limit)) or (max_dim is not None and dim > max_dim)


def _interior_rows(shape: tuple[int, int, int], n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` output pixels of channel 0 drawn from the central half of the image (a row at
    the border would have part of its neighbourhood cut off)."""
    _, height, width = shape
    r0, c0 = height // 4, width // 4
    rr, cc = np.meshgrid(np.arange(r0, height - r0), np.arange(c0, width - c0), indexing="ij")
    pixels = (rr * width + cc).ravel()
    return np.sort(rng.choice(pixels, size=min(n_rows, len(pixels)), replace=False))


def best_patch_size(medians, sizes) -> float:
    """The size of the largest median agreement; NaN when none is finite or when another size's
    median ties it (within ``TIE`` relative): a flat curve has no best size."""
    medians = np.asarray(medians, np.float64)
    if not np.isfinite(medians).any():
        return np.nan
    best = int(np.nanargmax(medians))
    others = np.delete(medians, best)
    if np.any(np.abs(others - medians[best]) <= TIE * max(abs(medians[best]), 1.0)):
        return np.nan
    return float(sizes[best])


def _apply(ctx, cache: dict, name: str, noisy: np.ndarray, sigma: float, **params) -> np.ndarray:
    """Reference ``name`` (its default params updated by ``params``) applied to ``noisy``, computed
    once per σ: the patch grid's default P is the output the agreement already has (an
    equivariant-local call is the most expensive step of the metric)."""
    from gahb_bench.registry import get_registry

    merged = {**(ctx.registry or get_registry()).reference(name).params, **params}
    key = (name, tuple(sorted(merged.items())))
    if key not in cache:
        cache[key] = ctx.reference(name, **params)(noisy, float(sigma))
    return cache[key]


def compute(ctx) -> dict:
    s = ctx.settings
    sigmas = np.asarray(s["sigmas"], np.float64)
    refs, patch_refs, sizes = list(s["references"]), list(s["patch_references"]), list(s["patch_sizes"])
    clean = ctx.test_set(int(s["n_images"])).astype(np.float64)
    n, shape, dim = len(clean), clean.shape[1:], clean[0].size
    n_train = len(ctx.train_images)
    has_optimum = ctx.dataset.has("optimal_denoiser")
    out = {"agreement": np.full((len(sigmas), len(refs), n), np.nan),
           "residual_agreement": np.full((len(sigmas), len(refs), n), np.nan),
           "identity_agreement": np.full((len(sigmas), n), np.nan),
           "baseline_agreement": np.full((len(sigmas), n), np.nan),
           "baseline_residual_agreement": np.full((len(sigmas), n), np.nan),
           "cross_agreement": np.full((len(sigmas), len(refs), len(refs)), np.nan),
           "optimum_agreement": np.full((len(sigmas), len(refs) + 1, n), np.nan),
           "patch_agreement": np.full((len(sigmas), len(patch_refs), len(sizes), n), np.nan),
           "best_patch_size": np.full((len(sigmas), len(patch_refs)), np.nan),
           "locality_radius": np.full((len(sigmas), len(s["energy_fractions"]), n), np.nan),
           "example_noisy": np.full((len(sigmas),) + shape, np.nan),
           "example_model": np.full((len(sigmas),) + shape, np.nan),
           "example_reference": np.full((len(sigmas), len(refs)) + shape, np.nan)}
    rng = ctx.rng(801)
    rows = _interior_rows(shape, int(s["n_rows"]), ctx.rng(802))
    for j, sigma in enumerate(sigmas):
        noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        model = ctx.denoise(noisy).astype(np.float64)
        out["identity_agreement"][j] = centred_r2(model, noisy)
        if s.get("control_baseline"):
            control = ctx.baseline(s["control_baseline"])(noisy, float(sigma))
            out["baseline_agreement"][j] = centred_r2(model, control)
            out["baseline_residual_agreement"][j] = residual_r2(model, control, noisy)
        outputs, cache = {}, {}
        for r, name in enumerate(refs):
            if not _skipped(ctx, name, n_train, dim):
                outputs[name] = _apply(ctx, cache, name, noisy, sigma)
                out["agreement"][j, r] = centred_r2(model, outputs[name])
                out["residual_agreement"][j, r] = residual_r2(model, outputs[name], noisy)
                out["example_reference"][j, r] = outputs[name][0]
        for r, a in enumerate(refs):
            for q, b in enumerate(refs):
                if a in outputs and b in outputs:
                    out["cross_agreement"][j, r, q] = median_iqr(centred_r2(outputs[a], outputs[b]))[0]
        if has_optimum:
            optimum = ctx.dataset.optimal_denoiser(noisy, float(sigma))
            out["optimum_agreement"][j, 0] = centred_r2(optimum, model)
            for r, name in enumerate(refs):
                if name in outputs:
                    out["optimum_agreement"][j, r + 1] = centred_r2(optimum, outputs[name])
        for r, name in enumerate(patch_refs):
            if _skipped(ctx, name, n_train, dim):
                continue
            for k, size in enumerate(sizes):
                out["patch_agreement"][j, r, k] = centred_r2(
                    model, _apply(ctx, cache, name, noisy, sigma, patch_size=int(size)))
            out["best_patch_size"][j, r] = best_patch_size(median_iqr(out["patch_agreement"][j, r], axis=-1)[0], sizes)
        J_rows = jacobian(ctx.model, noisy, rows=rows)
        out["locality_radius"][j] = np.median(
            row_energy_radius(J_rows, rows, shape, tuple(s["energy_fractions"])), axis=1).T
        out["example_noisy"][j], out["example_model"][j] = noisy[0], model[0]
        if ctx.progress:
            ctx.progress(1)
    return out


def summarize(ds) -> dict:
    """Per class, at the smallest and the largest N done (averaged over subsets and seeds), per
    σ: the median agreement (``r2_…``) and residual agreement (``r2res_…``) with each reference
    and with the controls (``identity``, ``baseline``), and P*(σ) of each patch reference."""
    out = {}
    done = metric_done(ds, "reference_agreement")
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        ns = [int(n) for n in ds.n_train.values if bool(ok.sel(n_train=n).any())]
        if not ns:
            continue
        med_class, best_class = class_medians(ds, done, image_class)
        for n in sorted({ns[0], ns[-1]}):
            med, best = med_class.sel(n_train=n), best_class.sel(n_train=n)
            for sigma in ds.reference_sigma.values:
                at = med.sel(reference_sigma=sigma)
                values = {"r2_identity": at["identity_agreement"], "r2_baseline": at["baseline_agreement"],
                          "r2res_baseline": at["baseline_residual_agreement"]}
                for ref in ds.reference.values:
                    values[f"r2_{ref}"] = at["agreement"].sel(reference=ref)
                    values[f"r2res_{ref}"] = at["residual_agreement"].sel(reference=ref)
                for name, value in values.items():
                    if np.isfinite(float(value)):
                        out[summary_key(ds, f"{name}_N{n}_sigma{sigma:g}", image_class)] = float(value)
                for ref in ds.patch_reference.values:
                    value = float(best.sel(reference_sigma=sigma, patch_reference=ref))
                    if np.isfinite(value):
                        out[summary_key(ds, f"best_patch_{ref}_N{n}_sigma{sigma:g}", image_class)] = value
    return out


def class_medians(ds, done, image_class) -> tuple:
    """One class of the experiment, its done cells only (``done``: :func:`metric_done` of this
    metric), per N: every per-image variable's median over the test images, then its mean over
    the replicates (subsets, seeds); and P*(σ) of each patch reference, its mean over the
    replicates. The statistics the summary, the figures and ``benchmarks/agreement_table.py``
    report."""
    cls = ds[list(NUMERIC)].isel(arch=0).sel(image_class=image_class).where(done.sel(image_class=image_class))
    return cls.median("reference_image").mean(_REPLICATES), cls["best_patch_size"].mean(_REPLICATES)


def plot(ds, outdir) -> list:
    """Per class: agreement (median r²) vs σ, one panel per reference and one curve per N; the
    locality profile (P*(σ) and the Jacobian's energy radii); and one test image denoised by the
    network and by each reference at each σ (largest N)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = metric_done(ds, "reference_agreement")
    sigmas = ds.reference_sigma.values
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        ns = [n for n in ds.n_train.values if bool(ok.sel(n_train=n).any())]
        if not ns:
            continue
        med, best = class_medians(ds, done, image_class)
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(ns)))
        refs = list(ds.reference.values)
        fig, axes = plt.subplots(2, len(refs), figsize=(3.2 * len(refs), 5.6), constrained_layout=True,
                                 squeeze=False, sharey="row")
        for row, (name, control) in enumerate((("agreement", "baseline_agreement"),
                                               ("residual_agreement", "baseline_residual_agreement"))):
            for ax, ref in zip(axes[row], refs):
                for color, n in zip(colors, ns):
                    at = med.sel(n_train=n)
                    ax.plot(sigmas, distance_from_r2(at[name].sel(reference=ref).values), "o-", color=color,
                            ms=3, label=f"N={n}")
                    ax.plot(sigmas, distance_from_r2(at[control].values), ":", color=color, lw=1)
                ax.set(yscale="log", title=ref)
                ax.axhline(1, color="k", lw=0.6)
                _sigma_axis(ax, sigmas)
                ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel(f"1 - median centred r2 ({ds.arch.values[0]})")
        axes[1, 0].set_ylabel("1 - median residual r2")
        axes[0, -1].legend(fontsize=7)
        fig.suptitle(f"{image_class}: distance of each reference to the network, 1 - r2\n(lower is closer; "
                     "1: no closer than a flat image; dotted: the control baseline)")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "reference-agreement"))

        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
        for color, n in zip(colors, ns):
            for style, ref in zip(("o-", "s--"), ds.patch_reference.values):
                axes[0].plot(sigmas, best.sel(n_train=n, patch_reference=ref).values,
                             style, color=color, ms=3, label=f"{ref} N={n}")
            for style, q in zip(("o-", "s--"), ds.energy_fraction.values):
                radius = med["locality_radius"].sel(n_train=n, energy_fraction=q)
                axes[1].plot(sigmas, radius.values, style, color=color, ms=3, label=f"{q:.0%} N={n}")
        axes[0].set(ylabel="P* (best patch size)", title="patch size of best agreement")
        axes[1].set(ylabel="radius (pixels)", title="Jacobian row energy radius")
        for ax in axes:
            _sigma_axis(ax, sigmas)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
        if not len(ds.patch_reference.values):
            axes[0].clear()
            axes[0].axis("off")
            axes[0].text(0.5, 0.5, "no patch-size grid in this experiment", ha="center", va="center",
                         transform=axes[0].transAxes)
        fig.suptitle(f"{image_class}: locality of {ds.arch.values[0]}")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "locality"))

        cell = ds[list(NUMERIC)].isel(arch=0).sel(image_class=image_class, n_train=ns[-1]).where(
            ok.sel(n_train=ns[-1])).isel(subset=0, seed=0)
        fig, axes = plt.subplots(len(sigmas), len(refs) + 2, figsize=(1.5 * (len(refs) + 2), 1.6 * len(sigmas)),
                                 constrained_layout=True, squeeze=False)
        for r, sigma in enumerate(sigmas):
            at = cell.sel(reference_sigma=sigma)
            panels = [(at.example_noisy, f"noisy s={sigma:g}"), (at.example_model, ds.arch.values[0])]
            panels += [(at.example_reference.sel(reference=ref), ref) for ref in refs]
            for ax, (img, title) in zip(axes[r], panels):
                ax.imshow(np.asarray(img.values)[0], cmap="gray", vmin=0, vmax=1)
                ax.set_title(title, fontsize=6)
                ax.axis("off")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "reference-examples"))
    return paths


def distance_from_r2(r2, floor: float = 1e-4) -> np.ndarray:
    """The normalized squared distance 1 − r² = ‖f_θ(y) − g(y)‖² / ‖f_θ(y) − mean f_θ(y)‖² that a
    median r² stands for, floored at ``floor`` for a log axis (an exact agreement, r² = 1, is drawn
    at the floor). On a log axis it shows 0.01 (99% of the output's variation reproduced) and 100
    (a reference a hundred times farther than a flat image, as the one training image is from a
    network that does not memorize it) in one panel, where r² itself would squash every curve but
    the worst against 1."""
    return np.maximum(1.0 - np.asarray(r2, np.float64), floor)


def _sigma_axis(ax, sigmas) -> None:
    """A log σ axis ticked at the measured σ, labelled as plain numbers (matplotlib's default
    minor labels overlap on a span under a decade)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_xticks(list(sigmas))
    ax.set_xticklabels([f"{s:g}" for s in sigmas])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("sigma")


_REPLICATES = ("subset", "seed")
_PER_IMAGE = ("reference_sigma", "reference", "reference_image")
#: The variables the figures read (``where`` needs numbers: the store also holds strings).
NUMERIC = ("agreement", "residual_agreement", "identity_agreement", "baseline_agreement",
           "baseline_residual_agreement", "best_patch_size", "locality_radius", "example_noisy", "example_model",
           "example_reference")
_EXAMPLE = ("reference_sigma", "channel", "row", "col")


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="reference_agreement",
        variables={
            "agreement": Variable(_PER_IMAGE, "", "centred r2 of the reference as a prediction of the network: "
                                  "1 - ||f - g||^2 / ||f - mean f||^2 per image"),
            "residual_agreement": Variable(_PER_IMAGE, "", "r2 of what the reference removes predicting what the "
                                           "network removes: 1 - ||f - g||^2 / ||(f - y) - mean(f - y)||^2"),
            "identity_agreement": Variable(("reference_sigma", "reference_image"), "",
                                           "centred r2 of the noisy input predicting the network (the trivial control)"),
            "baseline_agreement": Variable(("reference_sigma", "reference_image"), "",
                                           "centred r2 of the control baseline (a generic denoiser) predicting the network"),
            "baseline_residual_agreement": Variable(("reference_sigma", "reference_image"), "",
                                                    "residual r2 of the control baseline"),
            "cross_agreement": Variable(("reference_sigma", "reference", "other_reference"), "",
                                        "median centred r2 of other_reference predicting reference"),
            "optimum_agreement": Variable(("reference_sigma", "compared", "reference_image"), "",
                                          "centred r2 of the network or a reference predicting the class's optimum "
                                          "(NaN without an optimum)"),
            "patch_agreement": Variable(("reference_sigma", "patch_reference", "patch_size", "reference_image"), "",
                                        "centred r2 of a patch reference of each patch size"),
            "best_patch_size": Variable(("reference_sigma", "patch_reference"), "pixels",
                                        "P*: the patch size of the best median agreement"),
            "locality_radius": Variable(("reference_sigma", "energy_fraction", "reference_image"), "pixels",
                                        "median over sampled output pixels of the radius holding that fraction "
                                        "of the Jacobian row's energy"),
            "example_noisy": Variable(_EXAMPLE, "", "the first noisy test image"),
            "example_model": Variable(_EXAMPLE, "", "the network's output on it"),
            "example_reference": Variable(("reference_sigma", "reference", "channel", "row", "col"), "",
                                          "each reference's output on it"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Agreement (centred r2) of the network with reference denoisers fitted on its training set "
                    "(empirical optimum, Gaussian, local, equivariant-local), the patch size of best agreement "
                    "and the Jacobian's locality radius, per sigma.",
        plot=plot,
        summarize=summarize,
    ))
