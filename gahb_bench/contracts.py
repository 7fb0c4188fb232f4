"""The records that plugins register: the contract third parties code against.

Each hook of :mod:`gahb_bench.hookspecs` receives a ``register`` callback and calls it with
one of these records (``Architecture``, ``ImageClass``, ``Metric``, ``Battery``, ``Baseline``). The ``Architecture`` fields are frozen by DESIGN.md and must not drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # imported lazily: listing plugins must not pay for torch or xarray
    import torch

    from gahb_bench.image_classes.base import ImageDataset
    from gahb_bench.metrics.context import MetricContext

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use lower-case letters, digits, '-', '_' or '.'"
        )


def _check_params(kind: str, name: str, params: Any) -> None:
    if not isinstance(params, Mapping):
        raise TypeError(f"{kind} {name!r}: params must be a mapping of defaults, got {type(params).__name__}")
    for key in params:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{kind} {name!r}: parameter name {key!r} is not a Python identifier")


@dataclass(frozen=True)
class Architecture:
    """A denoiser architecture.

    ``build(channels: int, image_size: int, **params) -> torch.nn.Module``; the module maps a
    noisy batch (B, C, H, W) float32 to the denoised batch of the same shape. It is blind: it
    never receives σ. ``params`` are the defaults that ``gahb run --param k=v`` overrides.

    ``biases`` (optional, after the four fields DESIGN.md fixes): the architecture's inductive
    biases, axis → short description, on the axes of :data:`gahb_bench.biases.AXES`
    (``{"locality": "local", "receptive_field": "9 px"}``); published with its entries and set
    side by side on the leaderboard's comparison page.
    """

    name: str
    build: Callable[..., "torch.nn.Module"]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    biases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from gahb_bench.biases import check as check_biases

        _check_name("architecture", self.name)
        if not callable(self.build):
            raise TypeError(f"architecture {self.name!r}: build must be callable")
        _check_params("architecture", self.name, self.params)
        check_biases(self.biases, f"architecture {self.name!r}")


@dataclass(frozen=True)
class ImageClass:
    """An image class: ``build(image_size: int, **params) -> ImageDataset``.

    See :mod:`gahb_bench.image_classes.base` for what the dataset provides (disjoint train
    subsets, a test set, and optional declarations: optimal denoiser, optimal MSE, tangent).
    """

    name: str
    build: Callable[..., "ImageDataset"]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("image class", self.name)
        if not callable(self.build):
            raise TypeError(f"image class {self.name!r}: build must be callable")
        _check_params("image class", self.name, self.params)


@dataclass(frozen=True)
class Baseline:
    """A denoiser that needs no training and knows σ (wavelet thresholding, bandlets, …).

    ``denoise(noisy: np.ndarray (B, C, H, W), sigma: float, **params) -> np.ndarray`` of the
    same shape. The battery evaluates baselines on every image class of an experiment, on the
    test set and the σ grid of ``denoising_curves``, so their curves sit beside the networks'.
    """

    name: str
    denoise: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("baseline", self.name)
        if not callable(self.denoise):
            raise TypeError(f"baseline {self.name!r}: denoise must be callable")
        _check_params("baseline", self.name, self.params)


@dataclass
class Reference:
    """A denoiser fitted in closed form on a training set, knowing σ: what a trained network is
    compared with to ask which simple inductive bias explains it (the empirical optimum, the
    Gaussian model, local patch denoisers).

    ``fit(train_images: np.ndarray (N, C, H, W), **params) -> state`` once per cell (on that
    cell's training subset), then ``denoise(state, noisy (B, C, H, W), sigma: float) ->
    np.ndarray`` of the same shape, as often as needed: the state carries whatever the params
    decided. ``params`` are the defaults; a metric may vary them (e.g. the patch size of a local
    reference). ``max_dim``: the largest image (C·H·W pixels) the reference supports, or None.
    """

    name: str
    fit: Callable[..., Any]
    denoise: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    max_dim: int | None = None

    def __post_init__(self) -> None:
        _check_name("reference", self.name)
        if not callable(self.fit) or not callable(self.denoise):
            raise TypeError(f"reference {self.name!r}: fit and denoise must be callable")
        _check_params("reference", self.name, self.params)


@dataclass(frozen=True)
class Variable:
    """One output variable of a metric, per cell: its dimensions beyond the cell's own.

    ``dims`` name the metric's own axes (e.g. ("split", "sigma")); their coordinates come
    from the metric's ``coords(settings)``, except the image axes :data:`IMAGE_DIMS`
    ("channel", "row", "col"), which the harness fills from the image class (for variables
    that hold images: samples, eigenvectors). ``units`` and ``description`` land in the store.
    """

    dims: tuple[str, ...] = ()
    units: str = ""
    description: str = ""
    dtype: str = "float64"


#: Dimensions whose coordinates the harness provides: an image's channels, rows and columns.
IMAGE_DIMS = ("channel", "row", "col")
#: What a metric measures: one trained model ("cell"), or the two models trained on the
#: disjoint subsets S1 and S2 of the same class, N and seed ("pair").
SCOPES = ("cell", "pair")


@dataclass(frozen=True)
class Metric:
    """A measurement made on a trained denoiser in one cell, or on a pair of them.

    * ``variables``: name → :class:`Variable`, what the metric writes per cell.
    * ``coords(settings) -> {dim: values}``: coordinates of the metric's own dimensions,
      from the preset's settings for this metric (e.g. the σ grid).
    * ``compute(ctx: MetricContext) -> {name: array}``: arrays shaped by ``variables``.
    * ``requires``: capabilities the image class must declare (``"optimal_denoiser"``,
      ``"optimal_mse"``, ``"tangent_basis"``); a class without them is skipped, with the
      reason recorded in the store.
    * ``settings``: the defaults a preset may override.
    * ``plot(ds: xarray.Dataset, outdir: Path) -> list[Path]`` (optional): figures drawn from
      one experiment's Dataset, written as PNG files under ``outdir``.
    * ``scope``: ``"cell"`` (``compute`` receives a
      :class:`~gahb_bench.metrics.context.MetricContext`: one model) or ``"pair"`` (it receives a
      :class:`~gahb_bench.metrics.context.PairContext`: the models of S1 and S2 at the same
      class, N and seed, once both are trained; its variables are stored without the
      ``subset`` dimension). An experiment with a pair metric must train both subsets.
    * ``summarize(ds: xarray.Dataset) -> {name: float}`` (optional): experiment-level numbers
      computed from all of an experiment's cells when a run finishes (e.g. the N at which
      something first happens), stored in the group's ``summary`` attribute.
    """

    name: str
    variables: Mapping[str, Variable]
    coords: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    compute: Callable[["MetricContext"], Mapping[str, Any]]
    requires: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    plot: Callable[..., list] | None = None
    scope: str = "cell"
    summarize: Callable[..., Mapping[str, float]] | None = None

    def __post_init__(self) -> None:
        _check_name("metric", self.name)
        if not callable(self.compute) or not callable(self.coords):
            raise TypeError(f"metric {self.name!r}: compute and coords must be callable")
        if self.scope not in SCOPES:
            raise ValueError(f"metric {self.name!r}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.summarize is not None and not callable(self.summarize):
            raise TypeError(f"metric {self.name!r}: summarize must be callable")


@dataclass(frozen=True)
class Training:
    """The training recipe of SCIENCE.md §4, at a given budget.

    ``sigma_law``: "u2" draws σ = u², u ~ U[0, 1] (the public code), "uniform" draws
    σ ~ U[0, sigma_max]. ``steps`` gradient steps whatever N (the subset is tiled); the
    learning rate starts at ``lr`` and is halved every ``halve_every`` steps.

    ``loss_weighting``: "none" (the public code): loss = Σ_images Σ_pixels (f(y) − x)² / B;
    "inverse-variance": each image's squared error is multiplied by
    w(σ) = 1 / clamp(σ, ``weight_floor``, ``weight_cap``)^``weight_power`` (power 2 by default),
    so that between the two bounds a noise level counts by its error relative to its noise
    variance instead of by its absolute error (which the largest σ dominate), while above
    ``weight_cap`` the public code's relative weights are kept. See :mod:`gahb_bench.training`
    for what this does and does not change.
    """

    steps: int
    batch_size: int
    lr: float = 1e-3
    halve_every: int | None = None
    sigma_law: str = "u2"
    sigma_max: float = 1.0
    loss_weighting: str = "none"
    weight_floor: float = 0.01
    weight_cap: float = float("inf")
    weight_power: float = 2.0

    def __post_init__(self) -> None:
        if self.sigma_law not in ("u2", "uniform"):
            raise ValueError(f"sigma_law must be 'u2' or 'uniform', got {self.sigma_law!r}")
        if self.loss_weighting not in ("none", "inverse-variance"):
            raise ValueError(f"loss_weighting must be 'none' or 'inverse-variance', got {self.loss_weighting!r}")
        if not 0 < self.weight_floor <= self.weight_cap:
            raise ValueError(f"need 0 < weight_floor <= weight_cap, got {self.weight_floor}, {self.weight_cap}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("training steps and batch_size must be positive")


@dataclass(frozen=True)
class Experiment:
    """One group of the results store: a grid of cells and the metrics run in each.

    Cells: image_classes × n_train × subsets × seeds, plus one baseline cell per
    baseline × image class × seed (evaluated on the test set with the σ grid and ``n_test`` of
    ``denoising_curves``, which the experiment must then include). ``metric_settings`` maps a
    metric name to the settings that override its defaults (σ grid, number of test images, …).

    ``cap_n_train``: when True, an N larger than the image classes allow (two disjoint subsets
    of a finite collection) is lowered to the largest N they allow, as the public code does
    (``set_size = min(set_size, len(data) // 2)``); the store's ``n_train`` coordinate holds the
    N actually used and its attrs the N requested. When False such an N is refused.

    ``training``: the experiment's own recipe (budget), replacing the preset's; None keeps the
    preset's. A budget preset gives a cheap experiment (one that only needs a model, not a
    converged one, to exercise its metrics) fewer steps this way.
    ``image_size``: the experiment's own image size, replacing the preset's (None keeps it): some
    classes have a smallest size (disks: 10 px), and a rate can need more pixels than a budget
    preset's photographs do.
    """

    name: str
    image_classes: tuple[str, ...]
    n_train: tuple[int, ...]
    metrics: tuple[str, ...]
    subsets: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    metric_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    image_class_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    baselines: tuple[str, ...] = ()
    cap_n_train: bool = False
    training: "Training | None" = None
    image_size: int | None = None


@dataclass(frozen=True)
class Preset:
    """A battery at one budget: image size, training recipe, experiments."""

    name: str
    image_size: int
    training: Training
    experiments: tuple[Experiment, ...]
    description: str = ""


@dataclass(frozen=True)
class Battery:
    """A named, versioned set of presets. Bump ``version`` whenever a result would change."""

    name: str
    version: str
    presets: Mapping[str, Preset]
    description: str = ""
    #: Earlier versions whose stores and leaderboard entries this version still reads (validates,
    #: reports, shows in their own table). Whether their numbers are this version's is per preset:
    #: ``numbers_since``.
    readable_versions: tuple[str, ...] = ()
    #: How far (dB) a cell's mean test PSNR recomputed by ``gahb verify`` may be from the
    #: published one: training is not bit-reproducible across machines and thread counts.
    verify_tolerance_db: float = 0.5
    #: Preset → the first version whose numbers for that preset are this version's, for a bump
    #: that changed other presets only. A store of that preset made since then resumes and
    #: publishes as its own version, its entries join this version's leaderboard table (and make
    #: the same claim as this version's), and ``gahb verify`` recomputes them. A preset not named
    #: changed in this version. Versions are dotted integers ("0.9" < "0.10").
    numbers_since: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("battery", self.name)
        if not self.presets:
            raise ValueError(f"battery {self.name!r} has no presets")
        for preset, since in self.numbers_since.items():
            if preset not in self.presets:
                raise ValueError(f"battery {self.name!r}: numbers_since names {preset!r}, which is not a preset")
            if since not in self.versions or version_order(since) is None:
                raise ValueError(f"battery {self.name!r}: numbers_since[{preset!r}] = {since!r} must be a dotted "
                                 f"integer version among {', '.join(self.versions)}")

    @property
    def versions(self) -> tuple[str, ...]:
        """This version and the readable ones."""
        return (self.version, *self.readable_versions)

    def same_numbers(self, preset: str, version: str) -> bool:
        """Whether ``version``'s numbers for ``preset`` are this version's: ``version`` is this
        one, or a readable one no earlier than ``numbers_since[preset]``."""
        if version == self.version:
            return True
        since = self.numbers_since.get(preset)
        if since is None or version not in self.readable_versions:
            return False
        order = version_order(version)
        return order is not None and version_order(since) <= order

    def table_version(self, preset: str, version: str) -> str:
        """The version whose leaderboard table an entry of ``preset`` at ``version`` joins: this
        one when the numbers are the same, else its own."""
        return self.version if self.same_numbers(preset, version) else version


def version_order(version: str) -> tuple[int, ...] | None:
    """The sort key of a battery version: "0.10" → (0, 10); None when it is not dotted integers."""
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        return None
    return tuple(int(p) for p in version.split("."))
