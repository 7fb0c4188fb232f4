"""Metric ``tangent_space``: does the denoiser's Jacobian live in the manifold's tangent space?

On a k-dimensional manifold of images x = g(θ) (``disks``: k = 5, ``ray``: 1, ``sine_cone``: 2),
the optimal denoiser at small σ projects onto the tangent space T at x: its Jacobian tends to
the orthogonal projector U_T U_Tᵀ (eigenvalues 1, k times, then 0; tr ∇f* → k). The paper
(Fig. 5, SCIENCE.md §6) finds the network's Jacobian on disks keeps the 5 tangent directions and
adds GAHB directions the optimum would not (λ₅…₉ = 0.67 … 0.28 at σ = 0.04). At each σ of the
settings, on test images of the class with the orthonormal tangent basis U_T it declares:

    ``tangent_trace_fraction``   tr(U_Tᵀ J U_T) / tr J   (1: all of the effective dimension in T)
    ``tangent_energy_fraction``  ‖J U_T‖²_F / ‖J‖²_F
    ``principal_angles``         between the top-k eigenvectors of (J + Jᵀ)/2 and T (radians)
    ``excess_dimensions``        tr J − k (tr J: ``tangent_effective_dimensionality``)
    ``tangent_eigenvalues``      the largest ``n_eigen`` eigenvalues of (J + Jᵀ)/2

for the network (``jacobian_of = "model"``) and, where the class declares the Jacobian of its
optimum (``optimal_jacobian``: disks by Monte Carlo, ray exactly), for the optimum on the same
noisy images (``jacobian_of = "optimum"``; NaN otherwise). Jacobians are exact and full
(:func:`gahb_bench.jacobian.jacobian`): manifold classes are small images.
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.jacobian import eigh_descending, jacobian, principal_angles, tangent_energy_fraction, tangent_trace_fraction
from gahb_bench.store import largest_n_done, metric_done, summary_key

DEFAULTS = {"sigmas": (0.01, 0.04), "n_images": 8, "n_eigen": 10, "chunk_size": 32}
JACOBIAN_OF = ("model", "optimum")


def coords(settings) -> dict:
    return {"jacobian_of": list(JACOBIAN_OF), "tangent_sigma": np.asarray(settings["sigmas"], np.float64),
            "tangent_image": np.arange(int(settings["n_images"])),
            "tangent_eigen": np.arange(int(settings["n_eigen"]))}


def tangent_scores(J: np.ndarray, tangent: np.ndarray, n_eigen: int) -> dict:
    """The scores of one Jacobian J (D, D) against one tangent basis (k, …)."""
    k = len(tangent)
    vals, vecs = eigh_descending(J)
    angles = principal_angles(vecs[:, :k].T, tangent)
    return {"tangent_trace_fraction": tangent_trace_fraction(J, tangent),
            "tangent_energy_fraction": tangent_energy_fraction(J, tangent),
            "max_principal_angle": float(angles.max()), "mean_principal_angle": float(angles.mean()),
            "tangent_effective_dimensionality": float(np.trace(J)), "excess_dimensions": float(np.trace(J) - k),
            "tangent_eigenvalues": vals[:n_eigen]}


SCALARS = ("tangent_trace_fraction", "tangent_energy_fraction", "max_principal_angle", "mean_principal_angle",
           "tangent_effective_dimensionality", "excess_dimensions")


def compute(ctx) -> dict:
    s = ctx.settings
    sigmas = np.asarray(s["sigmas"], np.float64)
    n, n_eigen = int(s["n_images"]), int(s["n_eigen"])
    data = ctx.dataset
    latents = data.test_latents(n, ctx.data_seed)
    clean = data.render(latents).astype(np.float64)
    tangent = data.tangent_basis(latents)
    shape = (len(JACOBIAN_OF), len(sigmas), n)
    out = {name: np.full(shape, np.nan) for name in SCALARS}
    out["tangent_eigenvalues"] = np.full(shape + (n_eigen,), np.nan)
    rng = ctx.rng(601)
    for j, sigma in enumerate(sigmas):
        noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        jacobians = [jacobian(ctx.model, noisy, chunk_size=int(s["chunk_size"]))]
        if data.has("optimal_jacobian"):
            jacobians.append(np.asarray(data.optimal_jacobian(noisy, float(sigma)), np.float64))
        for which, J in enumerate(jacobians):
            for b in range(n):
                for name, value in tangent_scores(J[b], tangent[b], n_eigen).items():
                    out[name][which, j, b] = value
        if ctx.progress:
            ctx.progress(1)
    return out


def summarize(ds) -> dict:
    """Per class and σ, for the model at the largest N done and for the optimum (where the class
    declares its Jacobian), averaged over the images: the tangent energy fraction, the largest
    principal angle and the excess dimensions; with the chance level k/D of the fractions (what
    the identity, J = I, scores)."""
    out = {}
    names = ("tangent_energy_fraction", "max_principal_angle", "excess_dimensions")
    dim = int(ds.sizes["channel"] * ds.sizes["row"] * ds.sizes["col"])
    for image_class in ds.image_class.values:
        found = largest_n_done(ds, "tangent_space", image_class, [*names, "tangent_effective_dimensionality"])
        if found is None:
            continue
        _, cell = found
        cell = cell.mean("tangent_image")
        k = cell["tangent_effective_dimensionality"] - cell["excess_dimensions"]
        out[summary_key(ds, "chance_fraction", image_class)] = float(k.sel(jacobian_of="model").isel(tangent_sigma=0)) / dim
        for sigma in ds.tangent_sigma.values:
            for which in ds.jacobian_of.values:
                for name in names:
                    value = float(cell[name].sel(jacobian_of=which, tangent_sigma=sigma))
                    if np.isfinite(value):
                        out[summary_key(ds, f"{name}_{which}_sigma{sigma:g}", image_class)] = value
    return out


def plot(ds, outdir) -> list:
    """Top eigenvalues of the network's Jacobian (each N) and of the optimum against their index,
    one panel per σ, with the manifold's dimension marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = metric_done(ds, "tangent_space")
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        eig = ds["tangent_eigenvalues"].isel(arch=0).sel(image_class=image_class).where(ok).mean(("subset", "seed", "tangent_image"))
        fig, axes = plt.subplots(1, ds.sizes["tangent_sigma"], figsize=(5 * ds.sizes["tangent_sigma"], 3.8),
                                 constrained_layout=True, squeeze=False)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        k = float((ds["tangent_effective_dimensionality"] - ds["excess_dimensions"]).isel(arch=0).sel(
            image_class=image_class).mean())
        for ax, sigma in zip(axes[0], ds.tangent_sigma.values):
            for color, n in zip(colors, ds.n_train.values):
                y = eig.sel(tangent_sigma=sigma, n_train=n, jacobian_of="model").values
                if np.isfinite(y).any():
                    ax.plot(ds.tangent_eigen.values, y, "o-", color=color, ms=3, label=f"{ds.arch.values[0]} N={n}")
            y = eig.sel(tangent_sigma=sigma, jacobian_of="optimum").max("n_train").values
            if np.isfinite(y).any():
                ax.plot(ds.tangent_eigen.values, y, "k^--", ms=4, label="optimum")
            ax.axvline(k - 0.5, color="0.5", ls=":", label=f"dimension {k:g}")
            ax.set(xlabel="eigenvalue index", ylabel="eigenvalue of the Jacobian", title=f"{image_class}, sigma={sigma:g}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "tangent_space"))
    return paths


_DIMS = ("jacobian_of", "tangent_sigma", "tangent_image")


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="tangent_space",
        variables={
            "tangent_trace_fraction": Variable(_DIMS, "", "tr(U^T J U) / tr J, U the tangent basis"),
            "tangent_energy_fraction": Variable(_DIMS, "", "||J U||^2 / ||J||^2"),
            "max_principal_angle": Variable(_DIMS, "rad", "largest principal angle between the top-k eigenvectors "
                                            "and the tangent space"),
            "mean_principal_angle": Variable(_DIMS, "rad", "mean of those principal angles"),
            "tangent_effective_dimensionality": Variable(_DIMS, "", "tr J"),
            "excess_dimensions": Variable(_DIMS, "", "tr J - k (k: the manifold's dimension)"),
            "tangent_eigenvalues": Variable(_DIMS + ("tangent_eigen",), "", "largest eigenvalues of (J + J^T)/2"),
        },
        coords=coords,
        compute=compute,
        requires=("tangent_basis",),
        settings=DEFAULTS,
        description="How much of the denoiser's Jacobian lies in the manifold's tangent space at small sigma, "
                    "beside the optimum's.",
        plot=plot,
        summarize=summarize,
    ))
