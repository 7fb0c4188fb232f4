"""The standard battery: memorization → generalization on photographs (the paper's §2.2), and
denoising of C^α images beside the bandlet and wavelet baselines (the paper's Fig. 4).

Presets (DESIGN.md): ``smoke`` runs in minutes on 2 CPU cores and is what CI and a first run
use; ``cpu`` is sized for about an hour on a laptop CPU; ``paper`` is the paper's scale
(80×80, N up to 10⁵, the public code's training recipe) and needs GPUs and prepared CelebA
(``gahb data prepare celeba``). Later issues add experiments (model variance, optimality on
classes with a known optimum, Jacobian geometry) to each preset; bump ``VERSION`` whenever a
preset's numbers would change.
"""

from gahb_bench.contracts import Battery, Experiment, Preset, Training
from gahb_bench.hookspecs import hookimpl

VERSION = "0.3"

SMOKE = Preset(
    name="smoke",
    image_size=16,
    training=Training(steps=800, batch_size=32, lr=1e-3, halve_every=500),
    experiments=(
        Experiment(
            name="generalization",
            image_classes=("photographs",),
            n_train=(1, 8, 64),
            subsets=(0,),
            seeds=(0,),
            metrics=("denoising_curves",),
            metric_settings={"denoising_curves": {"n_sigma": 8, "n_test": 64, "min_evaluations": 32}},
            baselines=("wavelet-hard", "bandlets"),
        ),
    ),
    description="16x16 photographs, N = 1, 8, 64, 800 steps: minutes on 2 CPU cores.",
)

# The paper's regular-image class: C^alpha regions and contour (App. E), where bandlets are the
# reference. The public code's convention, to compare with Fig. 4.
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
        baselines=("wavelet-hard", "wavelet-soft", "bandlets"),
    )


# Measured: the UNet (2 blocks at 32x32) takes 0.35 s per step of batch 32 on 2 CPU cores, so
# 9 models x 1200 steps is about 63 minutes of training.
CPU = Preset(
    name="cpu",
    image_size=32,
    training=Training(steps=1200, batch_size=32, lr=1e-3, halve_every=600),
    experiments=(
        Experiment(
            name="generalization",
            image_classes=("photographs",),
            n_train=(1, 10, 100, 1000),
            subsets=(0, 1),
            seeds=(0,),
            metrics=("denoising_curves",),
            metric_settings={"denoising_curves": {"n_test": 256}},
            baselines=("wavelet-hard", "wavelet-soft", "bandlets"),
        ),
        _calpha(2.0, (1000,), 256),
    ),
    description="32x32 photographs (N = 1 ... 1000, two disjoint subsets) and C^2 images: about an hour "
                "on 2 CPU cores.",
)

# The public code: 1000 epochs of ~250k samples at batch 512 (~488k steps), lr halved every
# 100 epochs; CelebA 80x80 (prepared with `gahb data prepare celeba --src DIR`).
PAPER = Preset(
    name="paper",
    image_size=80,
    training=Training(steps=488_000, batch_size=512, lr=1e-3, halve_every=48_800),
    experiments=(
        Experiment(
            name="generalization",
            image_classes=("prepared",),
            # 0.5% held out (about 1000 of CelebA's 202,599) leaves two disjoint subsets of 1e5.
            image_class_params={"prepared": {"dataset": "celeba", "test_fraction": 0.005}},
            n_train=(1, 10, 100, 1000, 10_000, 100_000),
            subsets=(0, 1),
            seeds=(0,),
            metrics=("denoising_curves",),
            metric_settings={"denoising_curves": {"n_test": 1000, "n_sigma": 12}},
            baselines=("wavelet-hard", "wavelet-soft", "bandlets"),
        ),
        *(_calpha(alpha, (100_000,), 256, n_sigma=12) for alpha in (1.0, 2.0, 3.0, 5.0)),
    ),
    description="80x80 CelebA (N = 1 ... 1e5, two disjoint subsets) and C^alpha images (alpha = 1, 2, 3, 5, "
                "N = 1e5), the paper's training recipe: GPU hours.",
)


@hookimpl
def gahb_register_batteries(register):
    register(Battery(
        name="standard",
        version=VERSION,
        presets={p.name: p for p in (SMOKE, CPU, PAPER)},
        description="Memorization to generalization (Figs. 1, 15), growing with later issues.",
    ))
