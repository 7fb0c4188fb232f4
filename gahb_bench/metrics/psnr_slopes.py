"""Metric ``psnr_slopes``: the rate of the denoiser, as the slope of output vs input PSNR.

On C^α images (regions and contour of Hölder regularity s), the optimal MSE decays like
σ^{2s/(s+1)}: output PSNR against input PSNR −20 log10 σ is a line of slope s/(s+1)
(α/(α+1) in the Hölder convention; Fig. 4 of the paper), which bandlets reach and wavelet
thresholding, limited by the contour, does not (slope ½). This metric fits that slope for the
network and for each baseline of the settings, on the same noisy test images, by least squares
over the fit range σ ∈ [``sigma_min``, ``sigma_max``], with a bootstrap interval over images
(:func:`~gahb_bench.metrics.psnr.psnr_slope_bootstrap`).

**Calibration of the fit range.** A finite image has finitely many scales: at small σ every
coefficient is kept and the slope drifts toward 1, at large σ it saturates. Whether a range
measures the asymptotic rate at this image size is checked on the one class where the answer is
exact: a stationary Gaussian field with power spectrum |k|^−γ, γ = 2s + 2, of the same size and
pixel standard deviation as the test images, denoised by its exact Wiener filter, has the
asymptotic slope s/(s+1). Its slope fitted over the same σ grid is stored (``calibration_slope``)
with its error (``calibration_error``); a range is calibrated when |error| ≤ 0.03 (the battery's
ranges are, by a test).
"""

from __future__ import annotations

import numpy as np

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.image_classes.gaussian import power_spectrum, wiener_mse
from gahb_bench.metrics.psnr import (mse_per_image, psnr_from_mse, psnr_slope, psnr_slope_bootstrap, settings_sigma_grid,
                                     sigma_coords)
from gahb_bench.store import largest_n_done, metric_done, summary_key

DEFAULTS = {"sigma_min": 0.02, "sigma_max": 0.2, "n_sigma": 8, "n_test": 128,
            "baselines": ("wavelet-hard", "wavelet-soft", "bandlets", "image-mean"), "n_boot": 1000, "level": 0.95}
MODEL = "model"
#: A fit range is calibrated when the exact Wiener filter's fitted slope is this close to its rate.
CALIBRATION_TOLERANCE = 0.03


def calibration_problem(summary: dict) -> str:
    """'' when a C^α summary's fit range is calibrated (|``calibration_error``| within
    :data:`CALIBRATION_TOLERANCE`); otherwise why not. An optimal slope of 0 has no
    calibration: no Gaussian field decays at that rate, and a flat slope is also what the
    image-mean denoiser gets."""
    error = summary.get("calibration_error")
    if error is None or not np.isfinite(error):
        return f"optimal slope {summary['optimal_slope']:g}, no calibration"
    if abs(error) > CALIBRATION_TOLERANCE:
        return f"fit range not calibrated: the Wiener filter's slope is off by {error:+.3f}"
    return ""


def coords(settings) -> dict:
    sigmas = settings_sigma_grid(settings)
    return {**sigma_coords(sigmas, "fit_sigma", "fit_psnr_in"),
            "denoiser": [MODEL, *settings["baselines"]]}


def calibration_slope(optimal_slope: float, image_size: int, pixel_std: float, sigmas: np.ndarray) -> float:
    """The PSNR slope, fitted over ``sigmas``, of the exact Wiener filter of the stationary Gaussian
    field whose asymptotic slope is ``optimal_slope`` = s/(s+1): power spectrum |k|^−γ with
    γ = 2s + 2 = 2 / (1 − optimal_slope), ``image_size``², pixel standard deviation ``pixel_std``."""
    if not 0 < optimal_slope < 1:
        raise ValueError(f"optimal_slope must be in (0, 1), got {optimal_slope}")
    gamma = 2.0 / (1.0 - optimal_slope)
    spectrum = power_spectrum((image_size, image_size), gamma, pixel_std)
    return psnr_slope(sigmas, psnr_from_mse(wiener_mse(spectrum, sigmas)))


def compute(ctx) -> dict:
    s = ctx.settings
    sigmas = settings_sigma_grid(s)
    names = [MODEL, *s["baselines"]]
    denoisers = [lambda noisy, sigma: ctx.denoise(noisy)] + [ctx.baseline(b) for b in s["baselines"]]
    test = ctx.test_set(int(s["n_test"])).astype(np.float64)
    rng = ctx.rng(501)
    psnr = np.empty((len(names), len(test), len(sigmas)))
    for k, sigma in enumerate(sigmas):
        noisy = (test + sigma * rng.standard_normal(test.shape)).astype(np.float32)
        for d, denoise in enumerate(denoisers):
            psnr[d, :, k] = psnr_from_mse(mse_per_image(test, denoise(noisy, float(sigma))))
    fits = np.array([psnr_slope_bootstrap(sigmas, p, n_boot=int(s["n_boot"]), level=float(s["level"]),
                                          rng=ctx.rng(502, d)) for d, p in enumerate(psnr)])
    optimal = float(ctx.dataset.optimal_psnr_slope())
    # A rate of 0 (paper-code alpha = 1: regions C^0) has no Gaussian field to calibrate with.
    calibrated = (calibration_slope(optimal, test.shape[-1], float(test.std()), sigmas) if 0 < optimal < 1
                  else float("nan"))
    return {"slope": fits[:, 0], "slope_low": fits[:, 1], "slope_high": fits[:, 2],
            "slope_psnr": psnr.mean(axis=1), "optimal_slope": optimal,
            "calibration_slope": calibrated, "calibration_error": calibrated - optimal}


def summarize(ds) -> dict:
    """Per class: the fitted slope of the model at the largest N done, with its interval, the
    baselines' slopes, the optimal slope and the calibration error of the fit range; and the
    level beside the slope, ``psnr_minus_<baseline>``: the model's output PSNR minus the
    baseline's, averaged over the fit range (a slope says how the error decays, not how small it
    is: a near-identity network has slope ≈ 1 and a low PSNR)."""
    out = {}
    for image_class in ds.image_class.values:
        found = largest_n_done(ds, "psnr_slopes", image_class,
                               ["slope", "slope_low", "slope_high", "slope_psnr", "optimal_slope",
                                "calibration_error"])
        if found is None:
            continue
        n, cell = found
        key = lambda name: summary_key(ds, name, image_class)  # noqa: E731
        out[key("n_train")] = n
        for name in ("slope", "slope_low", "slope_high"):
            out[key(name)] = float(cell[name].sel(denoiser=MODEL))
        for name in ds.denoiser.values:
            if name != MODEL:
                out[key(f"slope_{name}")] = float(cell["slope"].sel(denoiser=name))
                out[key(f"psnr_minus_{name}")] = float((cell["slope_psnr"].sel(denoiser=MODEL)
                                                        - cell["slope_psnr"].sel(denoiser=name)).mean())
        out[key("optimal_slope")] = float(cell["optimal_slope"])
        out[key("calibration_error")] = float(cell["calibration_error"])
    return out


def plot(ds, outdir) -> list:
    """Left: output vs input PSNR over the fit range (largest N, baselines) beside a line of the
    optimal slope. Right: the fitted slopes with their intervals against N, the baselines' slopes
    (dashed) and the optimal slope (black)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = metric_done(ds, "psnr_slopes")
    for image_class in ds.image_class.values:
        ok = done.sel(image_class=image_class)
        if not bool(ok.any()):
            continue
        numeric = ["slope", "slope_low", "slope_high", "slope_psnr", "optimal_slope", "calibration_slope"]
        cell = ds[numeric].isel(arch=0).sel(image_class=image_class).where(ok).mean(("subset", "seed"))
        pin = ds.fit_psnr_in.values
        optimal = float(cell.optimal_slope.max())
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        largest = [n for n in ds.n_train.values if np.isfinite(cell.slope.sel(n_train=n, denoiser=MODEL))][-1]
        for j, name in enumerate(ds.denoiser.values):
            y = cell.slope_psnr.sel(denoiser=name).max("n_train").values if name != MODEL \
                else cell.slope_psnr.sel(denoiser=MODEL, n_train=largest).values
            label = f"{ds.arch.values[0]} N={largest}" if name == MODEL else name
            left.plot(pin, y, "o-" if name == MODEL else "s--", color=f"C{j}", ms=3, label=label)
        anchor = float(cell.slope_psnr.sel(denoiser=MODEL, n_train=largest).values[0])
        left.plot(pin, anchor + optimal * (pin - pin[0]), "k:", label=f"slope {optimal:.2f} (optimal)")
        left.set(xlabel="input PSNR (dB)", ylabel="output PSNR (dB)", title=f"{image_class}: fit range")
        left.legend(fontsize=8)
        left.grid(alpha=0.3)
        slope = cell.slope.sel(denoiser=MODEL)
        err = np.stack([slope - cell.slope_low.sel(denoiser=MODEL), cell.slope_high.sel(denoiser=MODEL) - slope])
        right.errorbar(ds.n_train.values, slope.values, yerr=err, fmt="o-", color="C0", capsize=3,
                       label=str(ds.arch.values[0]))
        for j, name in enumerate(ds.denoiser.values):
            if name != MODEL:
                right.axhline(float(cell.slope.sel(denoiser=name).max()), ls="--", color=f"C{j}", label=name)
        right.axhline(optimal, color="k", label="optimal s/(s+1)")
        right.axhline(float(cell.calibration_slope.max()), color="0.6", ls=":", label="Wiener calibration")
        right.set(xscale="log", xlabel="N (training images)", ylabel="PSNR slope", title="fitted slopes")
        right.legend(fontsize=8)
        right.grid(alpha=0.3)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "psnr_slopes"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    register(Metric(
        name="psnr_slopes",
        variables={
            "slope": Variable(("denoiser",), "", "least-squares slope of output vs input PSNR over the fit range"),
            "slope_low": Variable(("denoiser",), "", "lower end of the bootstrap interval (over images)"),
            "slope_high": Variable(("denoiser",), "", "upper end of the bootstrap interval"),
            "slope_psnr": Variable(("denoiser", "fit_sigma"), "dB", "mean output PSNR on the fit range's grid"),
            "optimal_slope": Variable((), "", "the class's optimal slope s/(s+1)"),
            "calibration_slope": Variable((), "", "the exact Wiener filter's slope over the same grid, on the "
                                          "Gaussian field of the same rate, size and pixel std"),
            "calibration_error": Variable((), "", "calibration_slope - optimal_slope (calibrated: |.| <= 0.03)"),
        },
        coords=coords,
        compute=compute,
        requires=("optimal_psnr_slope",),
        settings=DEFAULTS,
        description="Output-vs-input PSNR slope with a bootstrap interval beside the optimal rate and the "
                    "baselines, on a fit range calibrated by the exact Wiener filter.",
        plot=plot,
        summarize=summarize,
    ))
