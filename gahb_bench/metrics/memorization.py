"""Metric ``memorization``: how close is the network to the pure memorizer of its training set?

The empirical optimal denoiser f_N (:mod:`gahb_bench.references.empirical`) is E[x | y] when x is
uniform on the N training images: exactly what a network that memorized its training set
computes. On test images, at each σ of a log grid (both denoisers on the same y = x + z):

    ``distance_to_empirical``(σ) = E ‖f_θ(y) − f_N(y)‖² / D
    ``distance_to_input``(σ)     = E ‖f_θ(y) − y‖² / D
    ``memorization_ratio``(σ)    = distance_to_empirical / distance_to_input

    ``relative_distance_to_empirical``(σ) = E ‖f_θ(y) − f_N(y)‖² / E ‖f_N(y) − x‖²

A memorizer has both ratios ≈ 0 (it returns a training image, which f_N also returns); a
network that generalizes returns something close to the test image x, far from every training
image: its distance to f_N is then about f_N's own error, and the second ratio is about 1.
Read them per σ, in the middle of the grid: the first one's denominator is about σ² (or the
network's error), so it tends to 0 at large σ for every N (f_N and every network then return
the mean image) and grows with denoising quality at small σ; measured on 16-px photographs, its
average over σ was not monotone in N, so no mean over σ is stored.
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.metrics.psnr import settings_sigma_grid, sigma_coords
from gahb_bench.references.empirical import empirical_denoise

DEFAULTS = {"sigma_min": 0.01, "sigma_max": 1.0, "n_sigma": 10, "n_test": 100, "chunk": 4096}


def coords(settings) -> dict:
    sigmas = settings_sigma_grid(settings)
    return sigma_coords(sigmas)


def compute(ctx) -> dict:
    sigmas = settings_sigma_grid(ctx.settings)
    test = ctx.test_set(int(ctx.settings["n_test"])).astype(np.float64)
    rng = ctx.rng(301)
    to_empirical, to_input, empirical_error = (np.empty(len(sigmas)) for _ in range(3))
    d = test[0].size
    for k, sigma in enumerate(sigmas):
        noisy = (test + sigma * rng.standard_normal(test.shape)).astype(np.float32)
        network = ctx.denoise(noisy).astype(np.float64)
        empirical = empirical_denoise(ctx.train_images, noisy, float(sigma), chunk=int(ctx.settings["chunk"]),
                                      device=ctx.device)
        to_empirical[k] = ((network - empirical) ** 2).sum() / (len(test) * d)
        to_input[k] = ((network - noisy) ** 2).sum() / (len(test) * d)
        empirical_error[k] = ((empirical - test) ** 2).sum() / (len(test) * d)
    return {"distance_to_empirical": to_empirical, "distance_to_input": to_input,
            "memorization_ratio": to_empirical / to_input, "empirical_mse": empirical_error,
            "relative_distance_to_empirical": to_empirical / empirical_error}


def plot(ds, outdir) -> list:
    """The memorization ratio against input PSNR, one curve per N (each image class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = ds["status"].isel(arch=0) == 1
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        ratio = ds["memorization_ratio"].isel(arch=0).sel(image_class=image_class).where(ok).mean(("subset", "seed"))
        fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        for color, n in zip(colors, ds.n_train.values):
            y = ratio.sel(n_train=n).values
            if np.isfinite(y).any():
                ax.semilogy(ds.psnr_in.values, y, "o-", color=color, ms=3, label=f"N={n}")
        ax.set(xlabel="input PSNR (dB)", ylabel="||f - f_N||^2 / ||f - y||^2",
               title=f"{ds.arch.values[0]} on {image_class}: distance to the memorizer f_N")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "memorization"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="memorization",
        variables={
            "distance_to_empirical": Variable(("sigma",), "", "E||f(y) - f_N(y)||^2 / D on test images: distance "
                                              "to the empirical optimum of the training subset"),
            "distance_to_input": Variable(("sigma",), "", "E||f(y) - y||^2 / D on the same images"),
            "memorization_ratio": Variable(("sigma",), "", "distance_to_empirical / distance_to_input "
                                           "(0: the network is the memorizer)"),
            "empirical_mse": Variable(("sigma",), "", "E||f_N(y) - x||^2 / D: the memorizer's own error"),
            "relative_distance_to_empirical": Variable(("sigma",), "", "distance_to_empirical / empirical_mse "
                                                       "(0: the memorizer; about 1: as far from it as x is)"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Distance of the network to the empirical optimal denoiser f_N of its training set.",
        plot=plot,
    ))
