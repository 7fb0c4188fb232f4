"""The standard battery: memorization → generalization on photographs (the paper's §2.2).

Presets (DESIGN.md): ``smoke`` runs in minutes on 2 CPU cores and is what CI and a first run
use; ``cpu`` is sized for about an hour on a laptop CPU; ``paper`` is the paper's scale
(80×80, N up to 10⁵, the public code's training recipe) and needs GPUs and prepared CelebA
(``gahb data prepare celeba``). Later issues add experiments (model variance, optimality on
classes with a known optimum, Jacobian geometry) to each preset; bump ``VERSION`` whenever a
preset's numbers would change.
"""

from gahb_bench.contracts import Battery, Experiment, Preset, Training
from gahb_bench.hookspecs import hookimpl

VERSION = "0.2"

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

CPU = Preset(
    name="cpu",
    image_size=32,
    training=Training(steps=4000, batch_size=64, lr=1e-3, halve_every=1000),
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
    ),
    description="32x32 photographs, N = 1 ... 1000, two disjoint subsets: sized for a laptop CPU.",
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
    ),
    description="80x80 CelebA, N = 1 ... 1e5, two disjoint subsets, the paper's training recipe: GPU hours.",
)


@hookimpl
def gahb_register_batteries(register):
    register(Battery(
        name="standard",
        version=VERSION,
        presets={p.name: p for p in (SMOKE, CPU, PAPER)},
        description="Memorization to generalization (Figs. 1, 15), growing with later issues.",
    ))
