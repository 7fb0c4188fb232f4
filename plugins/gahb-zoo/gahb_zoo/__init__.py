"""gahb-zoo: first-party gahb-bench plugins whose inductive biases differ from the UNet's.

Registers five architectures, each installed and found exactly as a third party's plugin is
(the ``gahb_bench`` entry-point group):

==================  ==========================  ==================  ===========  ===============
name                locality                    equivariance        homogeneous  receptive field
==================  ==========================  ==================  ===========  ===============
``dncnn``           local (global under 43 px)  yes                 no (biases)  43 px
``local-cnn``       local                       yes                 yes          9 px (a param)
``mlp``             none                        no                  yes          the image
``vit``             none (global attention)     shifts by a patch   yes          the image
``attention-unet``  multiscale + global         as the UNet         yes          the image
==================  ==========================  ==================  ===========  ===============

Each module's docstring gives the formula, the parameters and the count at the ``cpu`` preset's
16 × 16 pixels.
"""

import gahb_bench
from gahb_zoo.attention_unet import build_attention_unet
from gahb_zoo.dncnn import build_dncnn
from gahb_zoo.local_cnn import build_local_cnn
from gahb_zoo.mlp import build_mlp
from gahb_zoo.vit import build_vit

ARCHITECTURES = (
    gahb_bench.Architecture(
        name="dncnn", build=build_dncnn, params={"depth": 21, "width": 64, "init": "public-code"},
        description="DnCNN with biases (Zhang et al. 2017): BF-CNN's twin, homogeneity broken.",
        biases={"locality": "local; global on images under 43 px",
                "receptive_field": "2·depth + 1 px (43 at depth 21)",
                "translation_equivariance": "yes (convolutions; zero padding)", "homogeneity": "no (biases, BN shift)",
                "global_interactions": "no", "multiscale": "no (full resolution)"}),
    gahb_bench.Architecture(
        name="local-cnn", build=build_local_cnn, params={"receptive_field": 9, "width": 128, "init": "public-code"},
        description="Bias-free CNN at full resolution with a receptive field of receptive_field pixels (local).",
        biases={"locality": "local; global on images under 9 px (default)",
                "receptive_field": "receptive_field px (9 by default)",
                "translation_equivariance": "yes (convolutions; zero padding)", "homogeneity": "yes (bias-free)",
                "global_interactions": "no", "multiscale": "no (full resolution)"}),
    gahb_bench.Architecture(
        name="mlp", build=build_mlp, params={"width": 512, "depth": 3, "bias": False},
        description="Fully connected denoiser on the flattened image: no locality, no equivariance.",
        biases={"locality": "none", "receptive_field": "the whole image",
                "translation_equivariance": "no", "homogeneity": "yes (bias-free by default)",
                "global_interactions": "yes (dense layers)", "multiscale": "no"}),
    gahb_bench.Architecture(
        name="vit", build=build_vit,
        params={"patch": 2, "dim": 128, "depth": 4, "heads": 4, "mlp_ratio": 2, "bias": False},
        description="Vision-transformer denoiser: patch tokens, global attention; bias-free by default.",
        biases={"locality": "none (patch tokens)", "receptive_field": "the whole image",
                "translation_equivariance": "approximate (patch shifts; relative positions)",
                "homogeneity": "yes (bias-free by default)", "global_interactions": "yes (attention)",
                "multiscale": "no"}),
    gahb_bench.Architecture(
        name="attention-unet", build=build_attention_unet,
        params={"blocks": "auto", "width": 64, "heads": 4, "init": "public-code"},
        description="The bias-free UNet with global self-attention at its coarsest level.",
        biases={"locality": "multiscale, global at the coarsest level", "receptive_field": "the whole image",
                "translation_equivariance": "approximate (as the UNet; attention adds none)",
                "homogeneity": "yes (bias-free)", "global_interactions": "yes (attention, coarsest level)",
                "multiscale": "yes (the UNet's levels)"}),
)


@gahb_bench.hookimpl
def gahb_register_architectures(register):
    for architecture in ARCHITECTURES:
        register(architecture)
