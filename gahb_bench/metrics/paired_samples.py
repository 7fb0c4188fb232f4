"""Pair metric ``paired_samples``: the paper's Fig. 2, from samples of the S1 and S2 models.

Both models draw ``n_samples`` images by reverse diffusion (:mod:`gahb_bench.sampling`) from the
SAME initial noise y₀ and the same injected noise z_t, so sample i of S1 and sample i of S2 are a
pair. For each pair and each sample:

* ``paired_similarity``: cos(x₁ᵢ, x₂ᵢ), the normalized inner product of the two models' samples
  (→ 1 as N grows: model variance vanishes); ``paired_similarity_centred`` after removing each
  image's mean;
* ``train_similarity``: cos(xₖᵢ, nearest image of Sₖ) for the model of subset k, the nearest
  found by cosine over the whole training subset (→ 1 when samples are training images);
  ``train_similarity_centred`` likewise;
* ``copy_ratio``: ‖x − NN₁‖ / ‖x − NN₂‖ with NN₁, NN₂ the nearest and second nearest training
  images in pixel distance (Gu et al. 2023's criterion: a sample is a **copy** when the ratio is
  below ``copy_threshold`` = 1/3, i.e. it is three times closer to one training image than to
  any other). ``copy_fraction`` is the fraction of a model's samples that are copies. It needs
  two training images: at N = 1 it is NaN (train_similarity says what it should there).

Scores per (class, N, seed): ``paired_similarity_median``, ``train_similarity_median`` (mean of
the two models' medians) and ``copy_fraction_mean``. The medians use the mean-removed
(centred) similarities by default (``scores_from="centred"``): images are non-negative, so the
plain cosine of any two of them is bounded below by their brightness (two different 8×8 patches
typically score 0.98), which leaves no room to see a transition; the centred cosine (the
correlation coefficient) is 0 for unrelated images. The experiment summary N* is the smallest N
of the grid at which the median paired similarity reaches ``similarity_level`` (0.9 by default)
while the **unpaired** similarity does not, per image class (medians over seeds); None when no N
of the grid qualifies.

The unpaired control: the median similarity of the two models' kept samples drawn from
*different* noise, cos(x₁ᵢ, x₂ⱼ) over i ≠ j of the first ``n_show``. Generalization, as the paper
reads it, is the two models mapping the same noise to the same image and different noise to
different images; two models that both collapse to one pattern (a network that failed to train,
whose samples share an artifact of its shared initialization) agree on paired samples too, and
on unpaired ones just as much. Such an N is recorded as ``collapsed_n`` (the first one), not as N*.

The denoiser control: where the experiment also measures the denoising curves, a pair counts
only when both of its models beat the identity on the test set (mean over σ of the output PSNR
above the input PSNR, −20 log10 σ). A pair of networks that make noisy images worse draws
"samples" that are not images (measured: a DnCNN with biases after 1000 steps on one image drew
pixels from −4.3 to 5.0, and its S1 and S2 samples agreed with median 0.97), and those can still
agree through the noise the two samplers share.
Such an N is recorded as ``not_denoising_n``, not as N*.

The first ``n_show`` samples of each model and their nearest training images are kept (as
images) for the figure.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from gahb_bench.contracts import Metric, Variable
from gahb_bench.figure_files import save_class_figure
from gahb_bench.hookspecs import hookimpl
from gahb_bench.sampling import SamplerSettings, sample
from gahb_bench.similarity import cosine_similarity, nearest_neighbours

DEFAULTS = {
    "n_samples": 64,
    "n_show": 6,
    # the sampler (SCIENCE.md §3); these are the paper's values (sampling.PAPER)
    "h0": 0.01, "beta": 0.1, "sigma_0": 1.0, "sigma_final": 0.05, "init_mean": 0.5, "max_steps": 5000,
    "copy_threshold": 1.0 / 3.0,
    "similarity_level": 0.9,
    "scores_from": "centred",  # or "plain": which cosine the medians and N* use
    "chunk": 4096,  # training images compared at once in the nearest-neighbour search
}
#: What a pair with a failed sample counts as in the median paired similarity: the lowest cosine.
FAILED_PAIR = -1.0
SAMPLER_KEYS = ("h0", "beta", "sigma_0", "sigma_final", "init_mean", "max_steps")


def coords(settings) -> dict:
    return {"sample": np.arange(int(settings["n_samples"])), "shown": np.arange(int(settings["n_show"]))}


def copy_ratios(samples: np.ndarray, train: np.ndarray, chunk: int, device) -> tuple[np.ndarray, np.ndarray]:
    """(‖x − NN₁‖ / ‖x − NN₂‖, index of NN₁) per sample; the ratio is NaN with one training image."""
    k = 2 if len(train) >= 2 else 1
    found = nearest_neighbours(samples, train, k=k, measure="l2", chunk=chunk, device=device)
    distances = np.sqrt(found.value)
    if k == 1:
        return np.full(len(samples), np.nan), found.index[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(distances[:, 1] > 0, distances[:, 0] / distances[:, 1], 0.0)
    return ratio, found.index[:, 0]


def compute(ctx) -> dict:
    s = ctx.settings
    n, n_show = int(s["n_samples"]), int(s["n_show"])
    if s["scores_from"] not in ("centred", "plain"):
        raise ValueError(f"scores_from must be 'centred' or 'plain', got {s['scores_from']!r}")
    centred = s["scores_from"] == "centred"
    sampler = SamplerSettings(**{k: s[k] for k in SAMPLER_KEYS})
    shape = (n,) + tuple(ctx.train_images[0].shape[1:])
    seed = int(ctx.seed % (2**63))
    drawn = []
    for k in (0, 1):
        model = ctx.models[k]

        def denoiser(y: torch.Tensor, model=model) -> torch.Tensor:
            return model(y)

        result = sample(denoiser, shape, sampler, seed=seed, device=ctx.device, strict=False, progress=ctx.progress)
        drawn.append((result.images.cpu().numpy().astype(np.float64), result))
    x1, x2 = drawn[0][0], drawn[1][0]
    out = {
        "paired_similarity": cosine_similarity(x1, x2),
        "paired_similarity_centred": cosine_similarity(x1, x2, centred=True),
        "sampler_steps": np.stack([r.steps for _, r in drawn]).astype(float),
        "sampler_failed": np.array([float(r.failed.sum()) for _, r in drawn]),
    }
    train_sim, train_sim_c, ratios, fractions, shown, nearest = [], [], [], [], [], []
    chunk = int(s["chunk"])
    for k, (x, result) in enumerate(drawn):
        train = ctx.train_images[k]
        ok = ~result.failed
        sims, sims_c, ratio = (np.full(n, np.nan) for _ in range(3))
        nn_index = np.zeros(n, dtype=np.int64)
        if ok.any():
            found = nearest_neighbours(x[ok], train, k=1, measure="cosine", chunk=chunk, device=ctx.device)
            sims[ok] = found.value[:, 0]
            sims_c[ok] = nearest_neighbours(x[ok], train, k=1, measure="cosine", centred=True, chunk=chunk,
                                            device=ctx.device).value[:, 0]
            ratio[ok], nn_index[ok] = copy_ratios(x[ok], train, chunk, ctx.device)
        train_sim.append(sims)
        train_sim_c.append(sims_c)
        ratios.append(ratio)
        valid = ratio[np.isfinite(ratio)]
        fractions.append(float(np.mean(valid < float(s["copy_threshold"]))) if len(valid) else np.nan)
        shown.append(x[:n_show])
        nearest.append(np.asarray(train)[nn_index[:n_show]].astype(np.float64))
    out.update({
        "train_similarity": np.stack(train_sim),
        "train_similarity_centred": np.stack(train_sim_c),
        "copy_ratio": np.stack(ratios),
        "copy_fraction": np.array(fractions),
        "samples": np.stack(shown),
        "nearest_train": np.stack(nearest),
        "paired_similarity_median": paired_median(out["paired_similarity_centred" if centred else "paired_similarity"]),
        "train_similarity_median": float(np.mean([np.nanmedian(t) for t in (train_sim_c if centred else train_sim)])),
        "copy_fraction_mean": float(np.mean(fractions)),
    })
    return out


def paired_median(similarities: np.ndarray) -> float:
    """The median paired similarity over all pairs, a pair with a failed sample (NaN: the
    sampler diverged or did not converge) counting as :data:`FAILED_PAIR`, a disagreement: the
    median over the surviving pairs alone would be decided by a selected few, the pairs both
    samplers could finish."""
    values = np.asarray(similarities, dtype=np.float64)
    return float(np.median(np.where(np.isfinite(values), values, FAILED_PAIR))) if values.size else float("nan")


def n_star(n_train: np.ndarray, median_similarity: np.ndarray, level: float,
           unpaired: np.ndarray | None = None, denoising: np.ndarray | None = None) -> float | None:
    """The smallest N (grid order) whose median paired similarity reaches ``level`` and, when
    given, whose ``unpaired`` similarity (per N) stays below it (a NaN control is not passed) and
    whose models are ``denoising`` (per N, True: both beat the identity); None if none."""
    unpaired = np.full(len(n_train), -np.inf) if unpaired is None else np.asarray(unpaired, dtype=float)
    denoising = np.ones(len(n_train), dtype=bool) if denoising is None else np.asarray(denoising, dtype=bool)
    for n, value, control, ok in zip(n_train, median_similarity, unpaired, denoising):
        if np.isfinite(value) and value >= level and control < level and ok:
            return float(n)
    return None


def beats_identity(ds, image_class) -> np.ndarray:
    """Per N: True when every done model of the experiment at that N (all subsets and seeds) has
    a mean test output PSNR over σ above the mean input PSNR (−20 log10 σ); all True when the
    experiment stores no denoising curves."""
    if "psnr" not in ds or "split" not in ds["psnr"].dims:
        return np.ones(ds.sizes["n_train"], dtype=bool)
    from gahb_bench.metrics.psnr import input_psnr

    test = ds["psnr"].isel(arch=0).sel(image_class=image_class, split="test")
    gain = (test - input_psnr(test.sigma.values)).mean("sigma")
    done = ds["status"].isel(arch=0).sel(image_class=image_class) == 1
    return np.array([bool(((gain.sel(n_train=n) > 0) | ~done.sel(n_train=n)).all()) for n in ds.n_train.values])


def unpaired_similarity(samples: np.ndarray, centred: bool = True) -> float:
    """Median of cos(x₁ᵢ, x₂ⱼ) over i ≠ j, for ``samples`` (2, n, …): the two models' samples
    from different noise (NaN with fewer than two samples, or when all are NaN)."""
    x1, x2 = np.asarray(samples[0], dtype=np.float64), np.asarray(samples[1], dtype=np.float64)
    if len(x1) < 2:
        return float("nan")
    i, j = np.nonzero(~np.eye(len(x1), dtype=bool))
    values = cosine_similarity(x1[i], x2[j], centred=centred)
    return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


def _settings(ds) -> tuple[float, bool]:
    """(similarity level, whether the scores use centred similarities) of the experiment."""
    import json

    settings = {**DEFAULTS, **json.loads(ds.attrs.get("metric_settings", "{}")).get("paired_samples", {})}
    return float(settings["similarity_level"]), settings["scores_from"] == "centred"


def _criteria(ds, image_class) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per N of one class: the median paired similarity (:func:`paired_median` of each done seed's
    pairs, then the median over seeds), the unpaired
    similarity and whether the models denoise: what :func:`n_star` reads."""
    _, centred = _settings(ds)
    cells = ds.isel(arch=0).sel(image_class=image_class)
    ok = ds["pair_status"].isel(arch=0).sel(image_class=image_class) == 1
    # From the pairs themselves (not the stored per-seed median, which stores written before
    # failed pairs counted as disagreements computed over the survivors): one statistic for
    # every store, the one median_interval bootstraps.
    similarities = cells["paired_similarity_centred" if centred else "paired_similarity"]
    per_seed = xr.apply_ufunc(paired_median, similarities, input_core_dims=[["sample"]], vectorize=True)
    medians = per_seed.where(ok).median("seed").values
    unpaired = np.array([_median_over_done_seeds(cells["samples"].sel(n_train=n), ok.sel(n_train=n), centred)
                         for n in ds.n_train.values])
    return medians, unpaired, beats_identity(ds, image_class)


def summarize(ds) -> dict:
    """N* per image class (see the module docstring)."""
    level, _ = _settings(ds)
    out = {"similarity_level": level}
    for image_class in ds.image_class.values:
        medians, unpaired, denoising = _criteria(ds, image_class)
        suffix = "" if ds.sizes["image_class"] == 1 else f"/{image_class}"
        out[f"n_star{suffix}"] = n_star(ds.n_train.values, medians, level, unpaired, denoising)
        out[f"collapsed_n{suffix}"] = next((float(n) for n, m, u in zip(ds.n_train.values, medians, unpaired)
                                            if m >= level and u >= level), None)
        out[f"not_denoising_n{suffix}"] = next((float(n) for n, m, ok in zip(ds.n_train.values, medians, denoising)
                                                if m >= level and not ok), None)
        for n, u in zip(ds.n_train.values, unpaired):
            out[f"unpaired_similarity_N{int(n)}{suffix}"] = None if not np.isfinite(u) else float(u)
    return out


def median_interval(similarities: np.ndarray, confidence: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median paired similarity as the summary computes
    it: ``similarities`` (seeds, samples), one row per done seed; the statistic is the median
    over seeds of each seed's median over its samples, and each resample redraws every seed's
    samples with replacement. With 16 samples the 95% interval of a median near 0.8 spans
    about ±0.1 (measured on the UNet's smoke store), so whether a median reaches 0.9 can be
    within sampling. A failed pair (NaN) counts as :data:`FAILED_PAIR`, as in
    :func:`paired_median`. NaN, NaN when there is no sample."""
    sims = np.atleast_2d(np.asarray(similarities, dtype=np.float64))
    sims = [np.where(np.isfinite(row), row, FAILED_PAIR) for row in sims if row.size]
    if not sims:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    per_seed = np.stack([np.median(rng.choice(row, (n_boot, row.size)), axis=1) for row in sims])
    stats = np.median(per_seed, axis=0)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def n_star_interval(ds, image_class, confidence: float = 0.95
                    ) -> tuple[float | None, float | None, np.ndarray, np.ndarray]:
    """How far N* is from being decided by the samples: (N* if every median were at the top of its
    bootstrap interval, N* if every one were at the bottom, the (n_N, 2) intervals, the medians
    themselves), the other criteria (unpaired similarity, denoising) as measured. N* lies between
    the first two when both exist; the second is None when the lower bounds never reach the level."""
    level, centred = _settings(ds)
    name = "paired_similarity_centred" if centred else "paired_similarity"
    cells = ds.isel(arch=0).sel(image_class=image_class)
    ok = ds["pair_status"].isel(arch=0).sel(image_class=image_class) == 1
    # One row per done seed (the seed axis selected by the pair status, not by NaN: a done seed
    # whose every sample failed is a row of disagreements).
    intervals = np.array([median_interval(cells[name].sel(n_train=n).transpose("seed", "sample").values[
                              ok.sel(n_train=n).values.astype(bool)], confidence)
                          for n in ds.n_train.values]).reshape(-1, 2)
    medians, unpaired, denoising = _criteria(ds, image_class)
    n = ds.n_train.values
    return (n_star(n, intervals[:, 1], level, unpaired, denoising),
            n_star(n, intervals[:, 0], level, unpaired, denoising), intervals, medians)


def _median_over_done_seeds(samples, done, centred: bool) -> float:
    """The median over the done seeds of :func:`unpaired_similarity` (``samples``: one N's kept
    samples, by seed); NaN when no seed is done."""
    values = [unpaired_similarity(samples.sel(seed=seed).values, centred)
              for seed in samples.seed.values if bool(done.sel(seed=seed))]
    return float(np.nanmedian(values)) if values else float("nan")


def plot(ds, outdir) -> list:
    """Fig. 2: histograms of paired and nearest-training similarity per N, and a grid of paired
    samples with each one's nearest training image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    done = ds["pair_status"].isel(arch=0) == 1
    for image_class in ds.image_class.values:
        sel = ds.isel(arch=0).sel(image_class=image_class).isel(seed=0)
        ok = done.sel(image_class=image_class).isel(seed=0)
        ns = [n for n in ds.n_train.values if bool(ok.sel(n_train=n))]
        if not ns:
            continue
        fig, axes = plt.subplots(1, len(ns), figsize=(3.2 * len(ns), 3), sharey=True, squeeze=False,
                                 constrained_layout=True)
        bins = np.linspace(-1.0, 1.0, 41)
        for ax, n in zip(axes[0], ns):
            cell = sel.sel(n_train=n)
            ax.hist(cell.paired_similarity_centred.values, bins=bins, alpha=0.7, color="C0", label="S1 vs S2 sample")
            ax.hist(cell.train_similarity_centred.values.ravel(), bins=bins, alpha=0.6, color="C1",
                    label="sample vs nearest training")
            ax.set(title=f"N={n}", xlabel="cosine similarity (mean removed)")
        axes[0, 0].set_ylabel("samples")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"{ds.arch.values[0]} on {image_class}: model variance and memorization (Fig. 2)")
        paths.append(save_class_figure(fig, outdir, ds, image_class, "paired_samples"))

        n_show = ds.sizes["shown"]
        fig, axes = plt.subplots(len(ns), 4 * 1, figsize=(7, 1.8 * len(ns)), squeeze=False, constrained_layout=True)
        for row, n in enumerate(ns):
            cell = sel.sel(n_train=n)
            panels = [cell.nearest_train.sel(subset=0, shown=0), cell.samples.sel(subset=0, shown=0),
                      cell.samples.sel(subset=1, shown=0), cell.nearest_train.sel(subset=1, shown=0)]
            titles = ["nearest in S1", "sample S1", "sample S2", "nearest in S2"]
            for col, (image, title) in enumerate(zip(panels, titles)):
                ax = axes[row, col]
                ax.imshow(np.clip(image.values[0], 0, 1), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(title, fontsize=8)
            axes[row, 0].set_ylabel(f"N={n}", fontsize=8)
        fig.suptitle(f"paired samples (same initial noise), first of {n_show} kept", fontsize=9)
        paths.append(save_class_figure(fig, outdir, ds, image_class, "paired_samples_grid"))
    return paths


@hookimpl
def gahb_register_metrics(register):
    image = ("subset", "shown", "channel", "row", "col")
    register(Metric(
        name="paired_samples",
        scope="pair",
        variables={
            "paired_similarity": Variable(("sample",), "", "cosine similarity of the S1 and S2 samples drawn from "
                                          "the same noise"),
            "paired_similarity_centred": Variable(("sample",), "", "the same after removing each image's mean"),
            "train_similarity": Variable(("subset", "sample"), "", "cosine similarity of each model's sample and "
                                         "its nearest image in its own training subset"),
            "train_similarity_centred": Variable(("subset", "sample"), "", "the same, mean removed"),
            "copy_ratio": Variable(("subset", "sample"), "", "||x - NN1|| / ||x - NN2|| over the training subset "
                                   "(a copy when below copy_threshold; NaN at N = 1)"),
            "copy_fraction": Variable(("subset",), "", "fraction of each model's samples that are copies"),
            "sampler_steps": Variable(("subset", "sample"), "", "reverse-diffusion steps each sample took"),
            "sampler_failed": Variable(("subset",), "", "samples that diverged or did not converge"),
            "samples": Variable(image, "", "the first n_show samples of each model"),
            "nearest_train": Variable(image, "", "their nearest training images (pixel distance)"),
            "paired_similarity_median": Variable((), "", "median paired similarity (centred by default: "
                                                 "scores_from)"),
            "train_similarity_median": Variable((), "", "mean over the two models of the median nearest-training "
                                                "similarity (centred by default)"),
            "copy_fraction_mean": Variable((), "", "mean over the two models of copy_fraction"),
        },
        coords=coords,
        compute=compute,
        settings=DEFAULTS,
        description="Paired samples of the S1 and S2 models: model variance and memorization (Fig. 2).",
        plot=plot,
        summarize=summarize,
    ))
