"""Battery + preset → the grid of cells, with every name and setting checked up front.

A cell is one trained model: (experiment, image class, N, subset, seed). The architecture is
fixed for a run, so it is not part of the cell (it is the store's leading ``arch`` dimension).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Collection, Mapping

from gahb_bench.contracts import Battery, Experiment, Metric, Preset, Training
from gahb_bench.errors import UnknownNameError

#: The store dimensions that index cells, in order (after ``arch``).
CELL_DIMS = ("image_class", "n_train", "subset", "seed")
#: The store dimensions that index baseline cells, in order.
BASELINE_DIMS = ("baseline", "image_class", "seed")
#: The store dimensions that index pair tasks (the two models of S1 and S2), in order.
PAIR_DIMS = ("image_class", "n_train", "seed")


@dataclass(frozen=True)
class Cell:
    """One trained model and the metrics measured on it."""

    experiment: str
    image_class: str
    n_train: int
    subset: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.image_class} N={self.n_train} S{self.subset + 1} seed={self.seed}"

    def index(self) -> dict[str, Any]:
        """The cell's coordinates along :data:`CELL_DIMS`."""
        return {"image_class": self.image_class, "n_train": self.n_train, "subset": self.subset, "seed": self.seed}


@dataclass(frozen=True)
class BaselineCell:
    """One training-free baseline evaluated on one image class's test set."""

    experiment: str
    baseline: str
    image_class: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.image_class} baseline {self.baseline} seed={self.seed}"

    def index(self) -> dict[str, Any]:
        """The cell's coordinates along :data:`BASELINE_DIMS`."""
        return {"baseline": self.baseline, "image_class": self.image_class, "seed": self.seed}


@dataclass(frozen=True)
class PairCell:
    """The two models trained on S1 and S2 at one (class, N, seed), measured together by the
    experiment's pair metrics once both exist."""

    experiment: str
    image_class: str
    n_train: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.image_class} N={self.n_train} S1+S2 seed={self.seed}"

    def index(self) -> dict[str, Any]:
        """The pair's coordinates along :data:`PAIR_DIMS`."""
        return {"image_class": self.image_class, "n_train": self.n_train, "seed": self.seed}

    def models(self) -> tuple[Cell, Cell]:
        """The cells of the two models it compares (S1, S2)."""
        return tuple(Cell(self.experiment, self.image_class, self.n_train, s, self.seed) for s in (0, 1))


def get_preset(battery: Battery, name: str) -> Preset:
    """The preset ``name`` of ``battery``, or a clear error listing the presets."""
    if name not in battery.presets:
        raise UnknownNameError(
            f"battery {battery.name!r} has no preset {name!r}; presets: {', '.join(battery.presets)}"
        )
    return battery.presets[name]


def cells(preset: Preset, paired: Collection[str] = ()) -> list[Cell | BaselineCell | PairCell]:
    """All cells of a preset, experiment by experiment: baselines (cheap) first, then models
    with small N first, then (for the experiments named in ``paired``, which train both
    subsets) one pair task per class, N and seed, after the two models it needs."""
    out: list[Cell | BaselineCell | PairCell] = []
    for exp in preset.experiments:
        for seed in exp.seeds:
            for image_class in exp.image_classes:
                out += [BaselineCell(exp.name, b, image_class, int(seed)) for b in exp.baselines]
        for seed in exp.seeds:
            for image_class in exp.image_classes:
                for n in sorted(exp.n_train):
                    for subset in exp.subsets:
                        out.append(Cell(exp.name, image_class, int(n), int(subset), int(seed)))
        if exp.name in paired and {0, 1} <= set(exp.subsets):
            out += [PairCell(exp.name, image_class, int(n), int(seed))
                    for seed in exp.seeds for image_class in exp.image_classes for n in sorted(exp.n_train)]
    return out


def capped_grid(experiment: Experiment, limit: int | None) -> tuple[int, ...]:
    """The experiment's N grid given the largest N its data allows (None: unlimited).

    With ``experiment.cap_n_train`` every N above ``limit`` becomes ``limit`` (repeats merged);
    otherwise the grid is returned unchanged (the caller refuses an N above the limit).
    """
    grid = tuple(sorted(int(n) for n in experiment.n_train))
    if limit is None or not experiment.cap_n_train:
        return grid
    return tuple(sorted({min(n, int(limit)) for n in grid}))


def resolve_preset(preset: Preset, limits: Mapping[str, int | None]) -> Preset:
    """The preset with each experiment's N grid capped by ``limits`` (experiment → largest N
    its image classes allow); see :func:`capped_grid`."""
    experiments = tuple(replace(exp, n_train=capped_grid(exp, limits.get(exp.name)))
                        for exp in preset.experiments)
    return replace(preset, experiments=experiments)


def experiment_of(preset: Preset, name: str) -> Experiment:
    """The experiment ``name`` of ``preset`` (a cell's ``experiment``)."""
    return next(exp for exp in preset.experiments if exp.name == name)


def training_of(preset: Preset, experiment: Experiment) -> Training:
    """The recipe the experiment's models train with: its own, else the preset's."""
    return experiment.training or preset.training


def size_of(preset: Preset, experiment: Experiment) -> int:
    """The image size of the experiment's images and models: its own, else the preset's."""
    return experiment.image_size or preset.image_size


def metric_settings(metric: Metric, experiment: Experiment) -> dict[str, Any]:
    """The metric's defaults overridden by the experiment's settings; unknown keys are errors."""
    overrides: Mapping[str, Any] = experiment.metric_settings.get(metric.name, {})
    unknown = set(overrides) - set(metric.settings)
    if unknown:
        raise UnknownNameError(
            f"experiment {experiment.name!r} sets unknown setting(s) {sorted(unknown)} of metric "
            f"{metric.name!r}; known: {sorted(metric.settings)}"
        )
    return {**metric.settings, **overrides}
