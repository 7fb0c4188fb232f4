"""The hooks a gahb-bench plugin may implement. Each receives a ``register`` callback."""

import pluggy

hookspec = pluggy.HookspecMarker("gahb_bench")
hookimpl = pluggy.HookimplMarker("gahb_bench")


@hookspec
def gahb_register_architectures(register):
    """Register denoiser architectures: ``register(gahb_bench.Architecture(...))``."""


@hookspec
def gahb_register_image_classes(register):
    """Register image classes: ``register(gahb_bench.ImageClass(...))``."""


@hookspec
def gahb_register_metrics(register):
    """Register metrics: ``register(gahb_bench.Metric(...))``."""


@hookspec
def gahb_register_batteries(register):
    """Register batteries: ``register(gahb_bench.Battery(...))``."""


@hookspec
def gahb_register_baselines(register):
    """Register training-free baseline denoisers: ``register(gahb_bench.Baseline(...))``."""


@hookspec
def gahb_register_references(register):
    """Register reference denoisers fitted on a training set: ``register(gahb_bench.Reference(...))``."""
