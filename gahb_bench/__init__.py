"""gahb-bench: the inductive biases of image denoisers, measured.

The public API for plugin authors::

    import gahb_bench

    @gahb_bench.hookimpl
    def gahb_register_architectures(register):
        register(gahb_bench.Architecture(name="my-net", build=make_net, params={"width": 32}))
"""

from gahb_bench.contracts import (
    Architecture,
    Baseline,
    Battery,
    Experiment,
    ImageClass,
    Metric,
    Preset,
    Reference,
    Training,
    Variable,
)
from gahb_bench.hookspecs import hookimpl, hookspec
from gahb_bench.image_classes.base import GenerativeDataset, ImageDataset, ManifoldDataset

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "Baseline",
    "Battery",
    "Experiment",
    "GenerativeDataset",
    "ImageClass",
    "ImageDataset",
    "ManifoldDataset",
    "Metric",
    "Preset",
    "Reference",
    "Training",
    "Variable",
    "hookimpl",
    "hookspec",
    "__version__",
]
