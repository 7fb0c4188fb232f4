"""The standard battery: memorization → generalization on photographs (the paper's §2.2), and
denoising of C^α images beside the bandlet and wavelet baselines (the paper's Fig. 4).

Presets (DESIGN.md): ``smoke`` runs in minutes on 2 CPU cores and is what CI and a first run
use; ``cpu`` is sized for under 90 minutes on 2 CPU cores; ``paper`` is the paper's scale
(80×80, N up to 10⁵, the public code's training recipe) and needs GPUs and prepared CelebA
(``gahb data prepare celeba``). Later issues add experiments (model variance, optimality on
classes with a known optimum, Jacobian geometry) to each preset; bump ``VERSION`` whenever a
preset's numbers would change.

Why the CPU presets use small images: the paper (Fig. 15) finds that smaller images generalize
at smaller N, and a 2-core budget trains a few thousand steps, not the public code's 488,000.
At 8×8 (``smoke``) and 16×16 (``cpu``) patches the largest N of the grid generalizes within that
budget while N = 1 memorizes, so both ends of the transition are visible; the README gives the
measured curves. The largest N is "all the data": 10⁵ requested, capped at what the
photographs allow (``cap_n_train``), as the public code caps its set size.
"""

from gahb_bench.contracts import Battery, Experiment, Preset, Training
from gahb_bench.hookspecs import hookimpl

VERSION = "0.6"


def _cpu_training(steps: int, batch_size: int) -> Training:
    """The CPU presets' recipe: the public code's σ law (σ = u²) and optimizer (Adam, lr 1e-3),
    batches of 64 (cheaper per image on a CPU than 32; at the same cost per image, more steps of
    64 learned the high noise levels better than half as many of 128), three learning-rate halvings (at 25%,
    50% and 75% of the steps), and the loss weighting w(σ) = 1 / clamp(σ, 0.01, 0.2)².

    Why the weighting: with the public code's loss (absolute squared error, dominated by the
    largest σ) a budget of a few thousand steps leaves the low noise levels unlearned: measured
    on photographs with the UNet, the networks stay worse than the identity below σ ≈ 0.03.
    Weighting by 1/σ² (each noise level counted by its error relative to its noise variance)
    fixes that but starves the high noise levels (at σ = 1 the networks fell 5 dB below the
    trivial image-mean denoiser); capping the weight above σ = 0.2 keeps the public code's
    relative weights among the high noise levels. Measured at 8 px (750 steps, all 20,911
    patches): +0.1 dB over the identity at σ = 0.01, and at σ = 1 2.6 dB below the image-mean
    control instead of 4.8 dB uncapped (batch 128). The budget still limits the high noise levels: the
    summary flags every cell whose test curve falls below the image-mean baseline or below a
    smaller-N network.
    """
    return Training(steps=steps, batch_size=batch_size, lr=1e-3, halve_every=-(-steps // 4),
                    loss_weighting="inverse-variance", weight_floor=0.01, weight_cap=0.2)


#: The metrics of the memorization → generalization experiment: the denoising curves (Figs. 1,
#: 15), the distance to the memorizer f_N, and, on the pairs of S1 and S2 models, the model
#: variance of the denoisers and the paired samples of Fig. 2.
GENERALIZATION_METRICS = ("denoising_curves", "memorization", "model_variance", "paired_samples")


def _generalization(n_train: tuple[int, ...], curves: dict, baselines: tuple[str, ...],
                    n_samples: int) -> Experiment:
    grid = {k: curves[k] for k in ("n_sigma",) if k in curves}
    return Experiment(
        name="generalization",
        image_classes=("photographs",),
        n_train=n_train,
        subsets=(0, 1),
        seeds=(0,),
        metrics=GENERALIZATION_METRICS,
        metric_settings={"denoising_curves": curves, "memorization": grid, "model_variance": grid,
                         "paired_samples": {"n_samples": n_samples}},
        baselines=baselines,
        cap_n_train=True,
    )


# The paper's regular-image class: C^alpha regions and contour (App. E), where bandlets are the
# reference; the public code's images, to compare with Fig. 4.
def _calpha(alpha: float, n_train: tuple[int, ...], n_test: int, n_sigma: int = 10) -> Experiment:
    return Experiment(
        name=f"calpha-alpha{alpha:g}",
        image_classes=("calpha",),
        image_class_params={"calpha": {"alpha": alpha, "convention": "paper-code"}},
        n_train=n_train,
        subsets=(0,),
        seeds=(0,),
        metrics=("denoising_curves",),
        metric_settings={"denoising_curves": {"n_test": n_test, "n_sigma": n_sigma}},
        baselines=("wavelet-hard", "wavelet-soft", "bandlets", "image-mean"),
    )


SMOKE = Preset(
    name="smoke",
    image_size=8,
    training=_cpu_training(steps=1500, batch_size=64),
    experiments=(
        _generalization((1, 100_000), {"n_sigma": 8, "n_test": 1024, "min_evaluations": 64},
                        ("wavelet-hard", "bandlets", "image-mean"), n_samples=16),
    ),
    description="8x8 photographs, N = 1 and all of them, S1 and S2: minutes on 2 CPU cores.",
)

CPU = Preset(
    name="cpu",
    image_size=16,
    training=_cpu_training(steps=3000, batch_size=64),
    experiments=(
        _generalization((1, 10, 100, 1000, 100_000), {"n_test": 512},
                        ("wavelet-hard", "wavelet-soft", "bandlets", "image-mean"), n_samples=64),
        _calpha(2.0, (1000,), 256),
    ),
    description="16x16 photographs (N = 1 ... all, two disjoint subsets) and C^2 images: under 90 minutes "
                "on 2 CPU cores.",
)

# The public code: 1000 epochs of ~250k samples at batch 512 (~488k steps), lr halved every
# 100 epochs; CelebA 80x80 (prepared with `gahb data prepare celeba --src DIR`). N = 10^5 is
# capped at half of what de-duplication leaves (the public code's largest set is 99,325).
PAPER = Preset(
    name="paper",
    image_size=80,
    training=Training(steps=488_000, batch_size=512, lr=1e-3, halve_every=48_800),
    experiments=(
        Experiment(
            name="generalization",
            image_classes=("prepared",),
            image_class_params={"prepared": {"dataset": "celeba", "test_fraction": 0.005}},
            n_train=(1, 10, 100, 1000, 10_000, 100_000),
            subsets=(0, 1),
            seeds=(0,),
            metrics=GENERALIZATION_METRICS,
            metric_settings={"denoising_curves": {"n_test": 1000, "n_sigma": 12},
                             "memorization": {"n_sigma": 12}, "model_variance": {"n_sigma": 12},
                             "paired_samples": {"n_samples": 1000}},
            baselines=("wavelet-hard", "wavelet-soft", "bandlets", "image-mean"),
            cap_n_train=True,
        ),
        *(_calpha(alpha, (100_000,), 256, n_sigma=12) for alpha in (1.0, 2.0, 3.0, 5.0)),
    ),
    description="80x80 CelebA (N = 1 ... 1e5 or all the data allows, two disjoint subsets) and C^alpha images "
                "(alpha = 1, 2, 3, 5, N = 1e5), the paper's training recipe: GPU hours.",
)


@hookimpl
def gahb_register_batteries(register):
    register(Battery(
        name="standard",
        version=VERSION,
        presets={p.name: p for p in (SMOKE, CPU, PAPER)},
        description="Memorization to generalization (Figs. 1, 15), growing with later issues.",
    ))
