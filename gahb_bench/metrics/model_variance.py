"""Pair metric ``model_variance``: how different are two denoisers trained on disjoint sets?

The paper's first result (§2.2): two networks trained on non-overlapping subsets S1, S2 of size
N compute different functions when they memorize (small N) and the same function when they
generalize (large N): the model variance vanishes. Measured here on the denoisers themselves,
at each σ of a log grid, on the test set, both models seeing the same noisy images y = x + z:

    V(σ) = E ‖f₁(y) − f₂(y)‖² / D                     (``model_variance``, per pixel)
    R(σ) = V(σ) / ½ (MSE₁(σ) + MSE₂(σ))              (``relative_model_variance``)

    V(σ) / σ²                                         (``model_variance_db``, in dB)

with MSE_k = E ‖f_k(y) − x‖² / D. The headline is V/σ²: the disagreement of the two functions
relative to the noise (0 dB: they differ by as much as the noise itself), averaged in dB over the
σ grid (``mean_model_variance_db``); it falls as N grows when the two networks converge to the
same function. R is 0 when the two denoisers agree, 2 when their errors are independent and of
equal size (then ‖f₁ − f₂‖² = ‖e₁‖² + ‖e₂‖²), at most 4; in dB, ``relative_model_variance_db``
(3 dB: independent errors). R ≈ 2(1 − ρ), ρ the correlation of the two models' errors, so it
measures whether the errors are correlated, not how far the functions are apart: two memorizers
that fail on the same details have a small R (measured on 16-px photographs: R ≈ −9.8 dB at
N = 1, σ = 0.01, while V/σ² = +7.5 dB there). Read R beside V/σ², not instead of it.
No sampling is involved: it is cheap, and it is the denoiser-level counterpart of Fig. 2.

Each test image's own ‖f₁(y) − f₂(y)‖²/D is kept too (``model_variance_per_image``): V(σ) is
their mean, and the scorecard resamples them for the headline's interval over the test images.
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.metrics.psnr import settings_sigma_grid, sigma_coords

DEFAULTS = {"sigma_min": 0.01, "sigma_max": 1.0, "n_sigma": 10, "n_test": 100}


def coords(settings) -> dict:
    sigmas = settings_sigma_grid(settings)
    return {**sigma_coords(sigmas), "variance_image": np.arange(int(settings["n_test"]))}


def per_image_variance(f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """‖f₁(y_i) − f₂(y_i)‖² / D for each image i of two denoised batches (first axis: images)."""
    diff = f1.astype(np.float64) - f2
    return (diff**2).reshape(len(diff), -1).mean(axis=1)


def relative_variance(variance: float, f1: np.ndarray, f2: np.ndarray, clean: np.ndarray) -> float:
    """R = V / ½ (MSE₁ + MSE₂) of two denoised batches of the same clean images, given their V."""
    d = f1[0].size
    mse = 0.5 * float((((f1.astype(np.float64) - clean) ** 2).sum() + ((f2.astype(np.float64) - clean) ** 2).sum())
                      / (len(f1) * d))
    return variance / mse if mse > 0 else float("nan")


def model_variance(f1: np.ndarray, f2: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(V, R) of two denoised batches of the same clean images (see the module docstring)."""
    variance = float(per_image_variance(f1, f2).mean())
    return variance, relative_variance(variance, f1, f2, clean)


def variance_db(variance: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """V/σ² in dB, 10 log10 (V / σ²), V floored at 1e-30 (two identical models: about −260 dB)."""
    return 10.0 * np.log10(np.maximum(variance, 1e-30) / np.asarray(sigmas, dtype=np.float64) ** 2)


def compute(ctx) -> dict:
    sigmas = settings_sigma_grid(ctx.settings)
    test = ctx.test_set(int(ctx.settings["n_test"])).astype(np.float64)
    rng = ctx.rng(201)
    variance, relative = np.empty(len(sigmas)), np.empty(len(sigmas))
    per_image = np.empty((len(sigmas), len(test)))
    for k, sigma in enumerate(sigmas):
        noisy = (test + sigma * rng.standard_normal(test.shape)).astype(np.float32)
        f1, f2 = ctx.denoise(0, noisy), ctx.denoise(1, noisy)
        per_image[k] = per_image_variance(f1, f2)
        variance[k] = float(per_image[k].mean())
        relative[k] = relative_variance(variance[k], f1, f2, test)
    db = 10.0 * np.log10(np.maximum(relative, 1e-30))
    noise_db = variance_db(variance, sigmas)
    return {"model_variance": variance, "model_variance_db": noise_db, "mean_model_variance_db": float(np.mean(noise_db)),
            "relative_model_variance": relative, "relative_model_variance_db": db,
            "model_variance_per_image": per_image}


def plot(ds, outdir) -> list:
    """Model variance relative to the noise, V/σ² in dB, against input PSNR, one curve per N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = ds["pair_status"].isel(arch=0) == 1
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        db = ds["model_variance_db"].isel(arch=0).sel(image_class=image_class).where(ok).mean("seed")
        fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        for color, n in zip(colors, ds.n_train.values):
            y = db.sel(n_train=n).values
            if np.isfinite(y).any():
                ax.plot(ds.psnr_in.values, y, "o-", color=color, ms=3, label=f"N={n}")
        ax.axhline(0, color="grey", ls=":", lw=1, label="as large as the noise")
        ax.set(xlabel="input PSNR (dB)", ylabel="||f1 - f2||^2 / (D sigma^2) (dB)",
               title=f"{ds.arch.values[0]} on {image_class}: S1 vs S2 denoisers")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "model_variance"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="model_variance",
        scope="pair",
        variables={
            "model_variance": Variable(("sigma",), "", "E||f1(y) - f2(y)||^2 / D on the test set"),
            "model_variance_db": Variable(("sigma",), "dB", "10 log10 model_variance / sigma^2"),
            "mean_model_variance_db": Variable((), "dB", "model_variance_db averaged over sigma (the headline)"),
            "relative_model_variance": Variable(("sigma",), "", "model_variance / mean of the two models' MSE "
                                                "(0: same function, 2: independent errors)"),
            "relative_model_variance_db": Variable(("sigma",), "dB", "10 log10 relative_model_variance"),
            "model_variance_per_image": Variable(("sigma", "variance_image"), "",
                                                 "||f1(y) - f2(y)||^2 / D of each test image (model_variance "
                                                 "is their mean)"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Model variance of the S1 and S2 denoisers on the same noisy test images (Section 2.2).",
        plot=plot,
    ))
