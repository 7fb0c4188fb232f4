"""Metric ``denoising_curves``: output PSNR against input PSNR, on train and test (Fig. 1).

For each σ of a log grid, the cell's denoiser is applied to y = x + z, z ~ N(0, σ² Id), on
its own training subset (split ``train``) and on the class's test set (split ``test``).
Memorization shows as a train curve of slope 1 above a flat, low test curve; generalization
as the two curves meeting. ``psnr_gap`` is the train − test PSNR averaged over the σ grid
(the paper's Fig. 15), in dB. The grid is log-spaced, so every dB of input PSNR weighs the same.

The gap's control: a training-free denoiser (``floor_baseline``, wavelet hard thresholding by
default) is applied to the very same noisy train and test images. Its own train − test
difference, ``psnr_gap_floor``, is what the two image sets differ by for reasons that have
nothing to do with training (which images happened to be drawn: at N = 1 it is one image
against the test set). A model generalizes when ``psnr_gap − psnr_gap_floor`` is 0; only that
excess is memorization.
"""

from __future__ import annotations

import json

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.metrics.psnr import denoising_curves, settings_sigma_grid, sigma_coords

SPLITS = ("train", "test")
CURVES = "denoising_curves"

DEFAULTS = {
    "sigma_min": 0.01,    # input PSNR 40 dB
    "sigma_max": 1.0,     # input PSNR 0 dB
    "n_sigma": 10,
    "n_test": 100,        # test images
    "min_evaluations": 64,  # noisy images per σ on the training split (small N are repeated)
    "max_train_images": 1024,  # training images evaluated (a seeded random subset when N is larger)
    "floor_baseline": "wavelet-hard",  # the training-free denoiser whose train - test gap is the floor
}


def coords(settings) -> dict:
    sigmas = settings_sigma_grid(settings)
    return {"split": list(SPLITS), **sigma_coords(sigmas)}


def compute(ctx) -> dict:
    sigmas = settings_sigma_grid(ctx.settings)
    test = ctx.test_set(int(ctx.settings["n_test"]))
    model = lambda noisy, sigma: ctx.denoise(noisy)  # noqa: E731 (blind: σ is not passed on)
    reference = ctx.baseline(str(ctx.settings["floor_baseline"]))
    psnr = np.empty((len(SPLITS), len(sigmas)))
    mse = np.empty_like(psnr)
    floor = np.empty_like(psnr)
    train = ctx.train_images
    limit = int(ctx.settings["max_train_images"])
    if len(train) > limit:  # the mean PSNR over 1024 images has a sampling error of ~0.1 dB
        train = train[np.sort(ctx.rng(102).choice(len(train), limit, replace=False))]
    for s, images in enumerate((train, test)):
        minimum = int(ctx.settings["min_evaluations"]) if SPLITS[s] == "train" else 1
        both, both_mse = denoising_curves([model, reference], images, sigmas, ctx.rng(101, s), minimum)
        psnr[s], mse[s], floor[s] = both[0], both_mse[0], both[1]
    return {
        "psnr": psnr,
        "mse": mse,
        "psnr_gap": float(np.mean(psnr[0] - psnr[1])),
        "floor_psnr": floor,
        "psnr_gap_floor": float(np.mean(floor[0] - floor[1])),
    }


def plot(ds, outdir) -> list:
    """Fig. 1 and Fig. 15 for each image class: train and test curves per N, and the gap vs N.

    Curves are averaged over subsets and seeds that are done; cells not done are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = ds["status"].isel(arch=0) == 1
    for image_class in ds.image_class.values:
        sel = dict(image_class=image_class)
        ok = done.sel(**sel)
        if not bool(ok.any()):
            continue
        psnr = ds["psnr"].isel(arch=0).sel(**sel).where(ok).mean(("subset", "seed"))
        gap = ds["psnr_gap"].isel(arch=0).sel(**sel).where(ok)
        x = ds["psnr_in"].values
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
        colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["n_train"]))
        for ax, split in zip(axes[:2], SPLITS):
            for color, n in zip(colors, ds.n_train.values):
                y = psnr.sel(n_train=n, split=split).values
                if np.isfinite(y).any():
                    ax.plot(x, y, "o-", color=color, ms=3, label=f"N={n}")
            if split == "test" and "baseline_psnr" in ds:
                base_ok = ds["baseline_status"].sel(**sel) == 1
                base = ds["baseline_psnr"].sel(**sel).where(base_ok).mean("seed")
                for k, name in enumerate(ds.baseline.values):
                    y = base.sel(baseline=name).values
                    if np.isfinite(y).any():
                        ax.plot(x, y, "--", color=plt.cm.Greys(0.45 + 0.2 * k), lw=1.2, label=str(name))
            ax.plot(x, x, ":", color="grey", lw=1, label="identity")
            ax.set(xlabel="input PSNR (dB)", ylabel="output PSNR (dB)", title=f"{split}")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        if "baseline_psnr" in ds:
            axes[1].legend(fontsize=8)
        n = ds.n_train.values
        mean_gap = gap.mean(("subset", "seed")).values
        axes[2].semilogx(n, mean_gap, "o-", color="C3", label="network")
        if "psnr_gap_floor" in ds:
            floor = ds["psnr_gap_floor"].isel(arch=0).sel(**sel).where(ok).mean(("subset", "seed")).values
            axes[2].semilogx(n, floor, "s--", color="grey", ms=4,
                             label=f"floor ({json.loads(ds.attrs.get('metric_settings', '{}')).get(CURVES, {}).get('floor_baseline', 'baseline')})")
            axes[2].legend(fontsize=8)
        axes[2].axhline(0, color="grey", lw=1, ls=":")
        axes[2].set(xlabel="training set size N", ylabel="train - test PSNR (dB)", title="generalization gap")
        axes[2].grid(alpha=0.3)
        fig.suptitle(f"{ds.arch.values[0]} on {image_class}: denoising curves")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "denoising_curves"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="denoising_curves",
        variables={
            "psnr": Variable(("split", "sigma"), "dB", "mean output PSNR of the denoised images (peak 1)"),
            "mse": Variable(("split", "sigma"), "", "mean per-pixel squared error of the denoised images"),
            "psnr_gap": Variable((), "dB", "train minus test output PSNR, averaged over the sigma grid (Fig. 15)"),
            "floor_psnr": Variable(("split", "sigma"), "dB", "output PSNR of the training-free floor baseline "
                                   "on the same noisy images"),
            "psnr_gap_floor": Variable((), "dB", "the floor baseline's train minus test PSNR on the same images: "
                                       "the gap that is not memorization"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Output vs input PSNR on the training subset and the test set; train-test gap (Figs. 1, 15).",
        plot=plot,
    ))
