"""Metric ``gahb``: the denoiser as a shrinkage in an adaptive basis (the paper's Section 3, Fig. 3).

At a noisy image y the Jacobian ∇f(y) of a bias-free denoiser satisfies f(y) = ∇f(y) y, so with
the eigen-decomposition of its symmetric part, ∇f(y) ≈ Σ_k λ_k e_k e_kᵀ,

    f(y) = Σ_k λ_k ⟨y, e_k⟩ e_k:

the network shrinks the coefficients ⟨y, e_k⟩ of y in a basis e_k(y) that adapts to the image
(oscillating along its contours: a geometry-adaptive harmonic basis, GAHB). The eigenvalues
λ_k ∈ [0, ~1] fall off faster as σ grows; their sum, tr ∇f(y), is the effective dimensionality.
At each σ of the settings, on a few test images, this metric stores:

* ``eigenvalues`` (the largest ``n_eigen``), each eigenpair's residual ‖S e − λ e‖, and the
  ``coefficients`` ⟨y, e_k⟩; the top ``n_show`` eigenvectors of the first image as images;
* ``effective_dimensionality`` tr ∇f(y) (exact from the full Jacobian; Hutchinson's estimate where
  the image is too large for it) and ``trace_hutchinson`` ± ``trace_hutchinson_se`` always;
* ``asymmetry`` ‖J − Jᵀ‖/‖J‖ (0 for the optimum, whose Jacobian is a covariance) and the
  ``homogeneity_residual`` ‖f(y) − ∇f(y) y‖/‖f(y)‖ (0 for a bias-free network: exactly, by a
  Jacobian-vector product, which repeats the forward arithmetic; to rounding, ~1e-7, from J·y);
* ``sure_mse``, Stein's unbiased estimate of the MSE from y alone,
  (‖y − f(y)‖² + 2σ² tr ∇f(y) − σ²D)/D, beside the ``true_mse`` (SCIENCE.md §1).

``method``: ``"full"`` (the exact Jacobian, then eigh in float64), ``"matrix-free"`` (block Lanczos
on batched Jacobian-vector products, :func:`gahb_bench.jacobian.top_eigenpairs`: top eigenpairs
without the Jacobian, each to a residual ≤ ``tol`` · λ₁; ``asymmetry`` is then NaN), or
``"auto"``: full up to ``max_full_dim`` pixels (40×40), matrix-free above.
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.jacobian import (asymmetry, eigh_descending, homogeneity_residual, hutchinson_trace, jacobian,
                                 sure_mse, symmetric_part, top_eigenpairs)
from gahb_bench.metrics.psnr import mse_per_image
from gahb_bench.store import largest_n_done, metric_done, summary_key

DEFAULTS = {"sigmas": (0.04, 0.15, 0.4), "n_images": 4, "n_eigen": 32, "n_show": 8, "method": "auto",
            "max_full_dim": 1600, "n_probes": 32, "chunk_size": 32, "tol": 1e-4}
METHODS = ("auto", "full", "matrix-free")


def coords(settings) -> dict:
    return {"jacobian_sigma": np.asarray(settings["sigmas"], np.float64),
            "jacobian_image": np.arange(int(settings["n_images"])),
            "eigen": np.arange(int(settings["n_eigen"])), "shown_eigen": np.arange(int(settings["n_show"]))}


def _full_method(settings, dim: int) -> bool:
    method = settings["method"]
    if method not in METHODS:
        raise ValueError(f"gahb: method must be one of {', '.join(METHODS)}, got {method!r}")
    return method == "full" or (method == "auto" and dim <= int(settings["max_full_dim"]))


def compute(ctx) -> dict:
    s = ctx.settings
    sigmas = np.asarray(s["sigmas"], np.float64)
    n, n_eigen, n_show = int(s["n_images"]), int(s["n_eigen"]), int(s["n_show"])
    clean = ctx.test_set(n).astype(np.float64)
    dim = clean[0].size
    if not n_show <= n_eigen < dim:
        raise ValueError(f"gahb: need n_show <= n_eigen < D = {dim}, got {n_show}, {n_eigen}")
    full = _full_method(s, dim)
    per_image = ("effective_dimensionality", "trace_hutchinson", "trace_hutchinson_se", "asymmetry",
                 "homogeneity_residual", "sure_mse", "true_mse")
    out = {name: np.full((len(sigmas), n), np.nan) for name in per_image}
    for name in ("eigenvalues", "eigen_residual", "coefficients"):
        out[name] = np.full((len(sigmas), n, n_eigen), np.nan)
    out["eigenvectors"] = np.full((len(sigmas), n_show) + clean.shape[1:], np.nan)
    out["noisy_image"] = np.full((len(sigmas),) + clean.shape[1:], np.nan)
    out["denoised_image"] = np.full((len(sigmas),) + clean.shape[1:], np.nan)
    rng = ctx.rng(701)
    for j, sigma in enumerate(sigmas):
        noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        denoised = ctx.denoise(noisy).astype(np.float64)
        hutch, hutch_se = hutchinson_trace(ctx.model, noisy, n_probes=int(s["n_probes"]), seed=j)
        if full:
            J = jacobian(ctx.model, noisy, chunk_size=int(s["chunk_size"]))
            vals, vecs = eigh_descending(J)
            vals, vecs = vals[:, :n_eigen], np.swapaxes(vecs[:, :, :n_eigen], 1, 2)  # (n, k, D)
            S = symmetric_part(J)
            resid = np.linalg.norm(np.einsum("bij,bkj->bki", S, vecs) - vals[..., None] * vecs, axis=-1)
            trace = np.trace(J, axis1=1, axis2=2)
            out["asymmetry"][j] = asymmetry(J)
            out["homogeneity_residual"][j] = homogeneity_residual(ctx.model, noisy, J)
        else:
            vals, vecs, resid = top_eigenpairs(ctx.model, noisy, n_eigen, tol=float(s["tol"]))
            vecs = vecs.reshape(n, n_eigen, dim)
            trace = hutch
            out["homogeneity_residual"][j] = homogeneity_residual(ctx.model, noisy)
        out["eigenvalues"][j], out["eigen_residual"][j] = vals, resid
        out["coefficients"][j] = np.einsum("bkd,bd->bk", vecs, noisy.reshape(n, dim).astype(np.float64))
        out["eigenvectors"][j] = vecs[0, :n_show].reshape((n_show,) + clean.shape[1:])
        out["noisy_image"][j], out["denoised_image"][j] = noisy[0], denoised[0]
        out["effective_dimensionality"][j] = trace
        out["trace_hutchinson"][j], out["trace_hutchinson_se"][j] = hutch, hutch_se
        out["sure_mse"][j] = sure_mse(noisy, denoised, trace, float(sigma))
        out["true_mse"][j] = mse_per_image(clean, denoised)
        if ctx.progress:
            ctx.progress(1)
    return out


def summarize(ds) -> dict:
    """Per class and σ, for the model at the largest N done: the effective dimensionality tr ∇f
    and the homogeneity residual ‖f(y) − ∇f(y) y‖/‖f(y)‖ averaged over the images, and SURE's agreement with the true MSE as a z-score,
    z = mean(SURE − MSE) / (std(SURE − MSE) / √n) over the n images (a t statistic with n − 1
    degrees of freedom: agreement within sampling error when |z| is below its 97.5% point, 2.0
    for many images but 3.18 for the default 4; a relative error would mostly show the noise of a few images, whose
    per-image SURE − MSE has a standard deviation ≈ σ²√(2/D))."""
    out = {}
    for image_class in ds.image_class.values:
        found = largest_n_done(ds, "gahb", image_class,
                               ["effective_dimensionality", "homogeneity_residual", "sure_mse", "true_mse"])
        if found is None:
            continue
        _, cell = found
        for sigma in ds.jacobian_sigma.values:
            at = cell.sel(jacobian_sigma=sigma)
            diff = (at["sure_mse"] - at["true_mse"]).values
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            out[summary_key(ds, f"effective_dimensionality_sigma{sigma:g}", image_class)] = float(
                at["effective_dimensionality"].mean())
            out[summary_key(ds, f"homogeneity_residual_sigma{sigma:g}", image_class)] = float(
                at["homogeneity_residual"].mean())
            out[summary_key(ds, f"sure_z_sigma{sigma:g}", image_class)] = float(diff.mean() / se) if se > 0 else None
    return out


def plot(ds, outdir) -> list:
    """Two figures per image class: the eigenvalue spectra per σ (one curve per N), and for the
    largest N the noisy image, the denoised image and the top eigenvectors at each σ (Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = metric_done(ds, "gahb")
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        cls = ds[[*NUMERIC]].isel(arch=0).sel(image_class=image_class)
        spectra = cls["eigenvalues"].where(ok).mean(("subset", "seed", "jacobian_image"))
        n_sigma = ds.sizes["jacobian_sigma"]
        fig, axes = plt.subplots(1, n_sigma, figsize=(4.5 * n_sigma, 3.6), constrained_layout=True, squeeze=False)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        for ax, sigma in zip(axes[0], ds.jacobian_sigma.values):
            for color, n in zip(colors, ds.n_train.values):
                y = spectra.sel(jacobian_sigma=sigma, n_train=n).values
                if np.isfinite(y).any():
                    ax.plot(ds.eigen.values, y, "o-", color=color, ms=2, label=f"N={n}")
            ax.set(xlabel="k", ylabel="eigenvalue lambda_k", title=f"{image_class}, sigma={sigma:g}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "gahb-spectra"))

        largest = [n for n in ds.n_train.values if bool(ok.sel(n_train=n).any())][-1]
        cell = cls.sel(n_train=largest).where(ok.sel(n_train=largest)).isel(subset=0, seed=0)
        n_show = ds.sizes["shown_eigen"]
        fig, axes = plt.subplots(n_sigma, n_show + 2, figsize=(1.3 * (n_show + 2), 1.4 * n_sigma),
                                 constrained_layout=True, squeeze=False)
        for r, sigma in enumerate(ds.jacobian_sigma.values):
            at = cell.sel(jacobian_sigma=sigma)
            panels = [(at.noisy_image, f"noisy s={sigma:g}", (0, 1)), (at.denoised_image, "denoised", (0, 1))]
            for k in range(n_show):
                vec = at.eigenvectors.isel(shown_eigen=k)
                lim = float(np.nanmax(np.abs(vec.values))) or 1.0
                panels.append((vec, f"e{k} l={float(at.eigenvalues.isel(jacobian_image=0, eigen=k)):.2f}", (-lim, lim)))
            for ax, (img, title, (lo, hi)) in zip(axes[r], panels):
                ax.imshow(np.asarray(img.values)[0], cmap="gray", vmin=lo, vmax=hi)
                ax.set_title(title, fontsize=6)
                ax.axis("off")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "gahb-eigenvectors"))
    return paths


_PER_IMAGE = ("jacobian_sigma", "jacobian_image")
#: The variables the figures read.
NUMERIC = ("eigenvalues", "eigenvectors", "noisy_image", "denoised_image")
_PER_EIGEN = _PER_IMAGE + ("eigen",)


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="gahb",
        variables={
            "eigenvalues": Variable(_PER_EIGEN, "", "largest eigenvalues of the symmetric part of the Jacobian"),
            "eigen_residual": Variable(_PER_EIGEN, "", "||S e - lambda e|| of each eigenpair"),
            "coefficients": Variable(_PER_EIGEN, "", "<y, e_k>: the noisy image in the adaptive basis"),
            "eigenvectors": Variable(("jacobian_sigma", "shown_eigen", "channel", "row", "col"), "",
                                     "top eigenvectors at the first image"),
            "noisy_image": Variable(("jacobian_sigma", "channel", "row", "col"), "", "the first noisy image"),
            "denoised_image": Variable(("jacobian_sigma", "channel", "row", "col"), "", "its denoised image"),
            "effective_dimensionality": Variable(_PER_IMAGE, "", "tr of the Jacobian (exact when full, else "
                                                 "Hutchinson)"),
            "trace_hutchinson": Variable(_PER_IMAGE, "", "Hutchinson's estimate of the trace (Rademacher probes)"),
            "trace_hutchinson_se": Variable(_PER_IMAGE, "", "its standard error"),
            "asymmetry": Variable(_PER_IMAGE, "", "||J - J^T|| / ||J|| (NaN when matrix-free)"),
            "homogeneity_residual": Variable(_PER_IMAGE, "", "||f(y) - J y|| / ||f(y)|| (0: bias-free)"),
            "sure_mse": Variable(_PER_IMAGE, "", "Stein's unbiased risk estimate of the MSE per pixel"),
            "true_mse": Variable(_PER_IMAGE, "", "the MSE per pixel against the clean image"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Eigen-decomposition of the denoiser's Jacobian (the GAHB), effective dimensionality, "
                    "asymmetry, homogeneity and SURE.",
        plot=plot,
        summarize=summarize,
    ))
