"""Metric ``optimality``: how far is the denoiser from the optimal one, where it is known?

On a class that declares its exact MMSE denoiser f*(y) = E[x | y] (``gaussian``: the Wiener
filter; ``ray``: exact; ``disks``: Monte Carlo), at each σ of a log grid, on test images y = x + z
that every denoiser sees alike (the network and each baseline of the settings):

    ``optimality_gap``(σ)    Δ(σ) = E ‖f(y) − f*(y)‖² / D
    ``denoiser_mse``(σ)      MSE_f(σ) = E ‖f(y) − x‖² / D,   ``optimal_mse``(σ) = MSE*(σ)
    ``optimality_gap_db``(σ) 10 log10(MSE_f / MSE*)  (0 dB: optimal)

Since f* is the conditional mean, MSE_f − MSE* = Δ in expectation (Pythagoras); Δ is estimated
directly, which has a far smaller variance than the difference of two MSEs (SCIENCE.md §8).
The KL bound of the paper's eq. 5, ∫ Δ(σ) σ⁻³ dσ, is integrated by the trapezoid in log σ over
the grid (``kl_bound``, per pixel, in nats; ``kl_bound_band`` per interval of the grid): it
bounds D_KL(p ‖ p_θ) from the grid's σ_min to σ_max only, and may diverge as σ_min → 0.

Baselines (wavelet thresholding, hard and soft; bandlets; the image-mean control, which knows
only that an image has a mean level) are evaluated on the very same noisy images, so the network
and every training-free denoiser sit in one table (the ``denoiser`` dimension).
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.jacobian import kl_bound
from gahb_bench.metrics.psnr import settings_sigma_grid, sigma_coords
from gahb_bench.store import largest_n_done, metric_done, summary_key

DEFAULTS = {"sigma_min": 0.01, "sigma_max": 1.0, "n_sigma": 10, "n_test": 64,
            "baselines": ("wavelet-hard", "wavelet-soft", "bandlets", "image-mean")}
#: The network's entry in the ``denoiser`` dimension; the others are baseline names.
MODEL = "model"


def coords(settings) -> dict:
    sigmas = settings_sigma_grid(settings)
    return {**sigma_coords(sigmas, "gap_sigma", "gap_psnr_in"),
            "denoiser": [MODEL, *settings["baselines"]],
            "sigma_band": np.arange(len(sigmas) - 1),
            "band_sigma_min": ("sigma_band", sigmas[:-1]), "band_sigma_max": ("sigma_band", sigmas[1:])}


def optimality_scores(clean: np.ndarray, optimum: np.ndarray, denoised: np.ndarray) -> tuple[float, float, float]:
    """(Δ, MSE_f, MSE*) per pixel for one batch: E‖f − f*‖²/D, E‖f − x‖²/D, E‖f* − x‖²/D."""
    clean, optimum, denoised = (np.asarray(a, np.float64) for a in (clean, optimum, denoised))
    return (float(np.mean((denoised - optimum) ** 2)), float(np.mean((denoised - clean) ** 2)),
            float(np.mean((optimum - clean) ** 2)))


def compute(ctx) -> dict:
    s = ctx.settings
    sigmas = settings_sigma_grid(s)
    names = [MODEL, *s["baselines"]]
    denoisers = [lambda noisy, sigma: ctx.denoise(noisy)] + [ctx.baseline(b) for b in s["baselines"]]
    test = ctx.test_set(int(s["n_test"])).astype(np.float64)
    rng = ctx.rng(401)
    gap = np.empty((len(names), len(sigmas)))
    mse = np.empty((len(names), len(sigmas)))
    mse_opt = np.empty(len(sigmas))
    for k, sigma in enumerate(sigmas):
        noisy = (test + sigma * rng.standard_normal(test.shape)).astype(np.float32)
        optimum = ctx.dataset.optimal_denoiser(noisy, float(sigma))
        for d, denoise in enumerate(denoisers):
            gap[d, k], mse[d, k], mse_opt[k] = optimality_scores(test, optimum, denoise(noisy, float(sigma)))
        if ctx.progress:
            ctx.progress(1)
    bounds = [kl_bound(sigmas, g) for g in gap]
    return {"optimal_mse": mse_opt, "denoiser_mse": mse, "optimality_gap": gap,
            "optimality_gap_db": 10 * np.log10(mse / mse_opt),
            "kl_bound": np.array([b[0] for b in bounds]), "kl_bound_band": np.stack([b[1] for b in bounds])}


def summarize(ds) -> dict:
    """Per class, for the model at the largest N done and for each baseline: the gap in dB
    averaged over the σ grid and the KL bound over its range."""
    out = {}
    for image_class in ds.image_class.values:
        found = largest_n_done(ds, "optimality", image_class, ["optimality_gap_db", "kl_bound"])
        if found is None:
            continue
        _, cell = found
        for name in ds.denoiser.values:
            out[summary_key(ds, f"gap_db_{name}", image_class)] = float(
                cell["optimality_gap_db"].sel(denoiser=name).mean("gap_sigma"))
            out[summary_key(ds, f"kl_bound_{name}", image_class)] = float(cell["kl_bound"].sel(denoiser=name))
    return out


def plot(ds, outdir) -> list:
    """MSE_f / MSE* in dB against input PSNR: one curve per N (solid) and per baseline (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = metric_done(ds, "optimality")
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        db = ds["optimality_gap_db"].isel(arch=0).sel(image_class=image_class).where(ok).mean(("subset", "seed"))
        fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        for color, n in zip(colors, ds.n_train.values):
            y = db.sel(n_train=n, denoiser=MODEL).values
            if np.isfinite(y).any():
                ax.plot(ds.gap_psnr_in.values, y, "o-", color=color, ms=3, label=f"{ds.arch.values[0]} N={n}")
        # Baselines do not train: the same in every cell, so read them from the largest N done.
        for j, name in enumerate(v for v in ds.denoiser.values if v != MODEL):
            y = db.sel(denoiser=name).max("n_train").values
            if np.isfinite(y).any():
                ax.plot(ds.gap_psnr_in.values, y, "--", color=f"C{j + 1}", label=name)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel="input PSNR (dB)", ylabel="10 log10 MSE / MSE* (dB)",
               title=f"{image_class}: distance to the optimal denoiser")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "optimality"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="optimality",
        variables={
            "optimal_mse": Variable(("gap_sigma",), "", "MSE* = E||f*(y) - x||^2 / D of the class's optimal denoiser on "
                                    "the test images"),
            "denoiser_mse": Variable(("denoiser", "gap_sigma"), "", "E||f(y) - x||^2 / D on the same noisy images"),
            "optimality_gap": Variable(("denoiser", "gap_sigma"), "", "Delta = E||f(y) - f*(y)||^2 / D "
                                       "(= MSE - MSE* in expectation)"),
            "optimality_gap_db": Variable(("denoiser", "gap_sigma"), "dB", "10 log10 MSE / MSE* (0: optimal)"),
            "kl_bound": Variable(("denoiser",), "nats/pixel", "int Delta sigma^-3 dsigma over the grid's sigma "
                                 "range (eq. 5), trapezoid in log sigma"),
            "kl_bound_band": Variable(("denoiser", "sigma_band"), "nats/pixel", "the same per interval of the grid"),
        },
        coords=coords,
        compute=compute,
        requires=("optimal_denoiser",),
        settings=DEFAULTS,
        description="Gap to the class's exact optimal denoiser per sigma, in dB, and the KL bound (eq. 5), "
                    "beside the baselines on the same images.",
        plot=plot,
        summarize=summarize,
    ))
