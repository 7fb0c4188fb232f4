"""One run, and one cell of it, whatever executes it.

:func:`prepare` checks everything a user can get wrong (names, ``--param``, the architecture's
build and output shape, data sizes, an existing store's identity) BEFORE anything is written.
:func:`run_cell` does one cell: data → train or load the cached checkpoint → metrics → region
write → status. It needs only a picklable :class:`RunSpec`, so any executor can run it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from gahb_bench import integrity, store
from gahb_bench.acceleration import Acceleration
from gahb_bench.architectures.layers import count_parameters
from gahb_bench.battery import (BaselineCell, Cell, PairCell, cells, get_preset, metric_settings, resolve_preset,
                                 experiment_of, size_of, training_of)
from gahb_bench.contracts import Battery
from gahb_bench.errors import (GahbError, ModelError, ParamError, StoreEditedError, StoreError, StoreWriteError,
                               UnknownNameError)
from gahb_bench.image_classes.base import stream_rng
from gahb_bench.metrics.context import MetricContext, PairContext
from gahb_bench.metrics.psnr import denoising_curve
from gahb_bench.progress import Progress
from gahb_bench.provenance import environment, now
from gahb_bench.registry import Registry, get_registry
from gahb_bench.training import (Snapshots, StopBetweenSteps, checkpoint_fields, checkpoint_key, discard_snapshot,
                                 load_checkpoint, pick_device, save_checkpoint, train_denoiser)


@dataclass(frozen=True)
class RunSpec:
    """What identifies a run; plain data so it can be sent to another process."""

    arch: str
    arch_params: Mapping[str, Any]
    battery: str
    preset: str
    store: str
    checkpoints: str
    device: str = "auto"
    quiet: bool = False
    #: Run only the cells of these experiments (empty: all); the store still holds every
    #: experiment of the preset, so a later run without the selection completes it.
    experiments: tuple[str, ...] = ()
    #: Optional speed-ups of training and forward-pass evaluation (all off: exact float32).
    acceleration: Acceleration = Acceleration()
    #: Minutes of training between two snapshots of a training in progress (0: none); a killed
    #: run resumes its trainings from them (:class:`gahb_bench.training.Snapshots`).
    snapshot_minutes: float = 10.0


@dataclass
class CellOutcome:
    """What happened in one cell."""

    cell: Cell | BaselineCell | PairCell
    status: int
    trained: bool = False
    message: str = ""
    seconds: float = 0.0
    #: The step at which its training resumed from a snapshot (0: none).
    resumed_at: int = 0
    #: Whether its model was loaded from a checkpoint (neither this nor ``trained``: the cell
    #: failed before it had a model).
    loaded: bool = False


@dataclass
class Plan:
    """A checked run: its cells, the templates of its store, its identity and provenance,
    and what is already done."""

    spec: RunSpec
    cells: list[Cell | BaselineCell | PairCell]
    templates: dict
    identity: dict
    provenance: dict
    done: set = field(default_factory=set)
    #: Done cells that failed the integrity check (:mod:`gahb_bench.integrity`): to recompute.
    damaged: list = field(default_factory=list)
    #: The installed battery's version; ``identity`` keeps an earlier one with the same numbers
    #: for this preset when the store was made by it (:func:`_keep_store_version`).
    installed_version: str = ""

    @property
    def todo(self) -> list[Cell | BaselineCell | PairCell]:
        """The cells not done yet, of the selected experiments (all when none is selected)."""
        chosen = set(self.spec.experiments)
        return [c for c in self.cells if (c.experiment,) + store.cell_key(c) not in self.done
                and (not chosen or c.experiment in chosen)]

    @property
    def n_done(self) -> int:
        """How many of the preset's cells were done before this run."""
        return sum((c.experiment,) + store.cell_key(c) in self.done for c in self.cells)


#: The metric whose σ grid and test set the baselines share.
CURVES = "denoising_curves"


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from any printable parts (same parts → same seed, on any machine)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def resolve_params(defaults: Mapping[str, Any], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Defaults overridden by ``given``; unknown names and type mismatches are :class:`ParamError`."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        raise ParamError(f"{owner} has no parameter {unknown[0]!r}; accepted: {accepted}")
    out = dict(defaults)
    for key, value in given.items():
        default = defaults[key]
        if default is not None and not isinstance(default, bool) and isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(f"{owner}: parameter {key!r} expects a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ParamError(f"{owner}: parameter {key!r} expects an integer, got {value!r}")
            value = type(default)(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ParamError(f"{owner}: parameter {key!r} expects true or false, got {value!r}")
        out[key] = value
    return out


def build_model(registry: Registry, spec: RunSpec, channels: int, image_size: int) -> torch.nn.Module:
    """Build the architecture, turning any failure of the plugin into a clear :class:`ModelError`."""
    entry = registry.entry("architectures", spec.arch)
    try:
        model = entry.record.build(channels, image_size, **spec.arch_params)
    except GahbError:
        raise
    except Exception as exc:
        raise ModelError(
            f"architecture {spec.arch!r} (plugin {entry.plugin.origin}) failed to build with "
            f"{dict(spec.arch_params)}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"architecture {spec.arch!r}: build returned {type(model).__name__}, not a torch.nn.Module")
    if not any(p.requires_grad for p in model.parameters()):
        raise ModelError(f"architecture {spec.arch!r}: the module has no trainable parameters")
    return model


def probe_model(model: torch.nn.Module, arch: str, channels: int, image_size: int,
                device: torch.device = torch.device("cpu")) -> None:
    """Check the contract on a small batch, on the run's device: (B, C, H, W) float in, the
    same shape out, finite, and reached by the gradient of some parameter (else nothing
    could train it)."""
    x = torch.rand(2, channels, image_size, image_size, generator=torch.Generator().manual_seed(0)).to(device)
    model.to(device).eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:
        raise ModelError(f"architecture {arch!r} failed on a batch of shape {tuple(x.shape)}: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"architecture {arch!r} returned {type(out).__name__}; it must return a tensor")
    if tuple(out.shape) != tuple(x.shape):
        raise ModelError(f"architecture {arch!r} maps {tuple(x.shape)} to {tuple(out.shape)}; "
                         f"a denoiser must return the shape it receives")
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise ModelError(f"architecture {arch!r} returned non-finite or non-float values")
    try:  # as training calls it: in train mode, gradients on (on a copy: train mode may change buffers)
        with torch.enable_grad():
            trainable = copy.deepcopy(model).train()(x).requires_grad
    except Exception as exc:
        raise ModelError(f"architecture {arch!r} failed in train mode with gradients on a batch of shape "
                         f"{tuple(x.shape)}: {type(exc).__name__}: {exc}") from exc
    if not trainable:
        raise ModelError(f"architecture {arch!r}: its output depends on no trainable parameter (no gradient "
                         "reaches one: a detach(), a torch.no_grad() or parameters with requires_grad=False), so "
                         "training cannot change it")


def build_dataset(registry: Registry, preset, exp, name: str) -> tuple[Any, dict[str, Any]]:
    """Build image class ``name`` at the experiment's size with the experiment's params."""
    record = registry.image_class(name)
    params = resolve_params(record.params, exp.image_class_params.get(name, {}), f"image class {name!r}")
    size = size_of(preset, exp)
    try:
        return record.build(size, **params), params
    except GahbError:
        raise
    except Exception as exc:
        raise ModelError(f"image class {name!r} failed to build at size {size} "
                         f"with {params}: {type(exc).__name__}: {exc}") from exc


def prepare(spec: RunSpec, registry: Registry | None = None) -> Plan:
    """Check the run and compute its plan; raises a :class:`GahbError` on any bad input."""
    registry = registry or get_registry()
    arch_entry = registry.entry("architectures", spec.arch)
    battery = registry.battery(spec.battery)
    preset = get_preset(battery, spec.preset)
    unknown = sorted(set(spec.experiments) - {exp.name for exp in preset.experiments})
    if unknown:
        raise UnknownNameError(f"preset {preset.name!r} of battery {battery.name!r} has no experiment(s) "
                               f"{', '.join(map(repr, unknown))}; experiments: "
                               f"{', '.join(exp.name for exp in preset.experiments)}")
    device = pick_device(spec.device)
    datasets = {(exp.name, name): build_dataset(registry, preset, exp, name)[0]
                for exp in preset.experiments for name in exp.image_classes}
    model_shapes = sorted({(datasets[(exp.name, name)].channels, size_of(preset, exp))
                           for exp in preset.experiments for name in exp.image_classes})
    n_parameters = 0
    for c, size in model_shapes:
        model = build_model(registry, spec, c, size)
        probe_model(model, spec.arch, c, size, device)
        if size == preset.image_size or not n_parameters:
            n_parameters = count_parameters(model)
    limits = {}
    for exp in preset.experiments:
        caps = [datasets[(exp.name, name)].max_train() for name in exp.image_classes]
        caps = [c for c in caps if c is not None]
        limits[exp.name] = min(caps) if caps else None
    requested = preset
    preset = resolve_preset(preset, limits)
    templates = {}
    for exp, asked in zip(preset.experiments, requested.experiments):
        metrics = {name: registry.metric(name) for name in exp.metrics}
        settings = {name: metric_settings(m, exp) for name, m in metrics.items()}
        for name in exp.image_classes:
            limit = datasets[(exp.name, name)].max_train()
            if limit is not None and max(exp.n_train) > limit:
                raise GahbError(f"image class {name!r} has at most {limit} images per subset at size "
                                f"{size_of(preset, exp)}; experiment {exp.name!r} asks for N={max(exp.n_train)}")
        if exp.baselines and CURVES not in exp.metrics:
            raise GahbError(f"experiment {exp.name!r} has baselines but not the {CURVES!r} metric "
                            f"whose sigma grid and test set they use")
        pair_metrics = [name for name, m in metrics.items() if m.scope == "pair"]
        if pair_metrics and not {0, 1} <= set(exp.subsets):
            raise GahbError(f"experiment {exp.name!r} has pair metric(s) {pair_metrics}, which compare the models "
                            f"of S1 and S2, but trains subsets {list(exp.subsets)}; it needs subsets (0, 1)")
        baselines = {name: dict(registry.baseline(name).params) for name in exp.baselines}
        shapes = {(datasets[(exp.name, name)].channels,) for name in exp.image_classes}
        image_shape = (min(shapes)[0], size_of(preset, exp), size_of(preset, exp))
        templates[exp.name] = store.experiment_template(spec.arch, exp, metrics, settings, baselines, image_shape)
        templates[exp.name].attrs["n_train_requested"] = json.dumps(sorted(int(n) for n in asked.n_train))
    identity = {
        "battery": battery.name, "battery_version": battery.version, "preset": preset.name,
        "image_size": preset.image_size, "arch": spec.arch, "arch_params": dict(spec.arch_params),
        "arch_plugin": arch_entry.plugin.name, "arch_distribution": arch_entry.plugin.distribution,
        "arch_plugin_version": arch_entry.plugin.version,
        "n_train_grids": {exp.name: list(exp.n_train) for exp in preset.experiments},
        "image_sizes": {exp.name: size_of(preset, exp) for exp in preset.experiments},
        # Only when a flag is on: a store written without flags keeps the identity it always had.
        **({"acceleration": json.dumps(spec.acceleration.key(), sort_keys=True)}
           if not spec.acceleration.is_default else {}),
    }
    fingerprints = {f"{e}/{c}": d.fingerprint() for (e, c), d in datasets.items()}
    provenance = {
        **{k: v for k, v in identity.items() if k != "arch_params"},
        "arch_params": json.dumps(dict(spec.arch_params), sort_keys=True), "n_parameters": n_parameters,
        "training": json.dumps(preset.training.__dict__),
        "experiment_training": json.dumps({exp.name: exp.training.__dict__ for exp in preset.experiments
                                           if exp.training is not None}),
        "seeds": json.dumps(sorted({s for e in preset.experiments for s in e.seeds})),
        "data": json.dumps({k: v for k, v in fingerprints.items() if v}, default=str),
    }
    paired = {exp.name for exp in preset.experiments
              if any(registry.metric(m).scope == "pair" for m in exp.metrics)}
    path = Path(spec.store)
    if path.exists():
        _keep_store_version(path, battery, preset.name, identity, provenance)
    plan = Plan(spec, cells(preset, paired), templates, identity, provenance, installed_version=battery.version)
    if path.exists():
        store.check_identity(path, identity)
        edited = [problem for exp, template in templates.items()
                  for problem in store.coordinate_problems(path, exp, template)]
        if edited:
            raise StoreEditedError(f"{path} has coordinates its battery does not make ({'; '.join(edited[:2])}"
                                   f"{f'; and {len(edited) - 2} more' if len(edited) > 2 else ''}): the store was "
                                   "edited or damaged, and its scores cannot be read by them")
        for exp in templates:
            intact, damaged = integrity.check_experiment(path, exp)
            plan.done |= {(exp,) + key for key in intact}
            plan.damaged += damaged
    return plan


def _apart_from_version(identity: Mapping[str, Any]) -> dict:
    """A run's identity as the store records it (JSON values), without its battery version."""
    return {k: v for k, v in store.as_recorded(identity).items() if k != "battery_version"}


def _keep_store_version(path: Path, battery: Battery, preset: str, identity: dict, provenance: dict) -> None:
    """A store made by an earlier battery version with this version's numbers for its preset
    (:meth:`Battery.same_numbers`) resumes as what it is: its version is kept in ``identity`` and
    ``provenance`` (so it also publishes as that version, into the same leaderboard table). One
    made by a version whose numbers for the preset differ is refused, saying so."""
    try:
        found = store.read_identity(path)
    except StoreError:
        return  # check_identity names what is wrong with the store
    version = found.get("battery_version")
    if not isinstance(version, str) or version == battery.version \
            or _apart_from_version(found) != _apart_from_version(identity) or not store.is_sealed(path):
        return  # the same version, or another run, or an unsealed store: check_identity says what differs
    if battery.same_numbers(preset, version):
        identity["battery_version"] = provenance["battery_version"] = version
    elif version not in battery.versions:
        raise StoreError(f"{path} was made by battery {battery.name} {version}, which this install (battery "
                         f"{battery.version}) does not know: it cannot be resumed or published by this install "
                         "(use the gahb-bench that made it)")
    else:
        raise StoreError(f"{path} was made by battery {battery.name} {version}, whose {preset} preset differs from "
                         f"the installed {battery.version}'s (other numbers or other stored variables): it cannot be "
                         f"resumed or published by this install (gahb report still reads it; a {battery.version} run "
                         "needs another store)")


def plan_of_store(path: Path, identity: Mapping[str, Any] | None = None) -> Plan:
    """The plan of the run that made the store at ``path``, made again from its recorded
    identity (``identity``, read from the store when None) with the installed battery and
    plugins: :func:`prepare` then checks the store against it (identity, coordinates, every done
    cell's digest, the damaged collected in ``plan.damaged``). :class:`StoreEditedError` when the
    store was edited (coordinates not the plan's, an identity no run makes); :class:`StoreError`
    when it was made by another run or a battery version this install does not resume;
    :class:`GahbError` when this install cannot make the plan (an architecture not installed)."""
    from gahb_bench.acceleration import Acceleration

    identity = store.read_identity(path) if identity is None else identity
    try:
        flags = identity.get("acceleration")
        spec = RunSpec(str(identity["arch"]), dict(identity.get("arch_params", {})), str(identity["battery"]),
                       str(identity["preset"]), str(path), str(path.parent / "checkpoints"), quiet=True,
                       acceleration=Acceleration(**json.loads(flags)) if flags else Acceleration())
    except (AttributeError, KeyError, TypeError, ValueError, GahbError) as exc:
        raise StoreEditedError(f"{path}: its recorded identity is not one a run makes ({type(exc).__name__}: "
                               f"{exc}); the store was edited or damaged") from exc
    return prepare(spec)


def start(plan: Plan) -> None:
    """Create the store if it does not exist yet (after :func:`prepare` accepted the run), and
    record this run (its environment and start time) in the store's ``runs`` list."""
    path = Path(plan.spec.store)
    this_run = {**environment(str(pick_device(plan.spec.device))), "started": now()}
    if not path.exists():
        store.create(path, plan.templates, plan.identity, {**plan.provenance, "started": this_run["started"]})
    store.append_run(path, this_run)


_DATASET_CACHE: dict[tuple, Any] = {}


def _dataset(registry: Registry, spec: RunSpec, preset, cell: Cell | BaselineCell | PairCell):
    """(experiment, dataset, params) of a cell; datasets are built once per process."""
    exp = experiment_of(preset, cell.experiment)
    key = (spec.battery, spec.preset, cell.experiment, cell.image_class)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = build_dataset(registry, preset, exp, cell.image_class)
    return exp, *_DATASET_CACHE[key]


def _failure(exc: Exception, spec: RunSpec) -> str:
    """The message recorded for a failed cell; unexpected errors also print their traceback
    (unless quiet), since they are bugs in gahb-bench or in a plugin."""
    if isinstance(exc, GahbError):
        return str(exc)
    if not spec.quiet:
        traceback.print_exc(file=sys.stderr)
    return f"{type(exc).__name__}: {exc}"


def _finish(path: Path, template, cell, values: dict, status: int) -> None:
    """Write a cell's final status; a done cell is then sealed with the digest of what the store
    holds for it (:func:`gahb_bench.integrity.seal`): nothing unsealed is ever trusted."""
    store.write_cell(path, template, cell, values)
    if status == store.DONE:
        integrity.seal(path, cell, lambda digest: store.write_cell(path, template, cell, digest))


def _reset(path: Path, template, cell) -> None:
    """Start a cell that was attempted before (its stored status is not pending, or does not
    decode: failed, damaged, or done but not trusted) from the pending values
    (:func:`gahb_bench.integrity.blank`). A pristine cell is left as it is: resetting every cell
    cost the smoke battery ~25 s of region writes."""
    if integrity.is_pending(path, cell):
        return
    store.write_cell(path, template, cell, integrity.blank(template, cell))


def run_baseline_cell(spec: RunSpec, cell: BaselineCell, template) -> CellOutcome:
    """Evaluate one baseline on one class's test set over the σ grid; write its region."""
    start_time = time.perf_counter()
    registry = get_registry()
    preset = get_preset(registry.battery(spec.battery), spec.preset)
    path = Path(spec.store)
    _reset(path, template, cell)
    try:
        exp, dataset, _ = _dataset(registry, spec, preset, cell)
        baseline = registry.baseline(cell.baseline)
        settings = metric_settings(registry.metric(CURVES), exp)
        sigmas = template["sigma"].values  # the store's own grid, so the curves align by construction
        test = dataset.test_set(int(settings["n_test"]), cell.seed)
        rng = stream_rng(stable_seed("baseline", cell.image_class, cell.seed))
        psnr, mse = np.empty(len(sigmas)), np.empty(len(sigmas))
        for k, sigma in enumerate(sigmas):
            def denoise(noisy: np.ndarray, s: float = float(sigma)) -> np.ndarray:
                return np.asarray(baseline.denoise(noisy, s, **baseline.params), dtype=np.float64)

            (psnr[k],), (mse[k],) = denoising_curve(denoise, test, np.array([sigma]), rng)
        store.write_cell(path, template, cell, {"baseline_psnr": psnr, "baseline_mse": mse,
                                                "baseline_seconds": time.perf_counter() - start_time})
        status, message = store.DONE, ""
    except StoreWriteError:
        raise
    except Exception as exc:  # the cell fails, the run goes on
        status, message = store.FAILED, _failure(exc, spec)
    _finish(path, template, cell, {"baseline_status": status, "baseline_message": message[:1000]}, status)
    return CellOutcome(cell, status, False, message, time.perf_counter() - start_time)


def trained_model(registry: Registry, spec: RunSpec, preset, cell: Cell, dataset, class_params: dict,
                  train_images: np.ndarray, device: torch.device,
                  allow_training: bool = True) -> tuple[torch.nn.Module, Any, bool]:
    """The cell's model, loaded from its checkpoint or trained (and then saved); returns
    (model in eval mode on ``device``, training log, whether it was trained now). With
    ``allow_training`` False a missing checkpoint is a :class:`GahbError` (a pair task never
    trains the models it compares: their own cells do)."""
    model_seed = stable_seed("model", cell.image_class, cell.n_train, cell.subset, cell.seed)
    exp = experiment_of(preset, cell.experiment)
    recipe = training_of(preset, exp)
    torch.manual_seed(model_seed)
    size = size_of(preset, exp)
    model = build_model(registry, spec, dataset.channels, size)
    entry = registry.entry("architectures", spec.arch)
    fields = checkpoint_fields(spec.arch, entry.plugin.version, dict(spec.arch_params), cell.image_class,
                               {**class_params, **dataset.fingerprint()}, size, cell.n_train,
                               cell.subset, cell.seed, recipe)
    if not spec.acceleration.is_default:  # a model trained in bf16 is another model
        fields["acceleration"] = spec.acceleration.key()
    key = checkpoint_key(fields)
    ckpt = Path(spec.checkpoints) / spec.arch / f"{key}.pt"
    partial = ckpt.with_name(f"{key}.partial.pt")
    log = load_checkpoint(ckpt, model, fields)
    trained = log is None
    if trained and not allow_training:
        raise GahbError(f"the model of {cell.label} has no checkpoint (its cell failed or has not run yet)")
    if trained:
        snapshots = Snapshots(partial, fields, 60.0 * spec.snapshot_minutes) if spec.snapshot_minutes > 0 else None
        label = f"train {cell.image_class} N={cell.n_train} S{cell.subset + 1}"
        # Ctrl-C and SIGTERM wait for the end of a step (and its snapshot), or for the save of the
        # trained model: they never cost training already done.
        with StopBetweenSteps() as stop:
            with Progress(quiet=spec.quiet).bar(recipe.steps, label) as bar:
                log = train_denoiser(model, train_images, recipe, model_seed + 1, device, bar, spec.acceleration,
                                     snapshots, stop)
            save_checkpoint(ckpt, model, fields, log)
    if allow_training:  # the trained model supersedes its snapshot (also one left by a kill after the save)
        discard_snapshot(partial)
    return model.to(device).eval(), log, trained


def _run_metrics(registry: Registry, names: list[str], dataset, image_class: str, make_context, write,
                 spec: RunSpec) -> tuple[np.ndarray, np.ndarray]:
    """Run ``names`` in turn: skip (with the reason) a metric whose requirements the class does
    not declare, compute the others on ``make_context(metric)``, ``write`` each one's values as
    soon as it is done. Returns (status, message), one entry per metric; never raises."""
    status = np.zeros(len(names), np.int8)
    message = np.full(len(names), "", dtype=object)
    for m, name in enumerate(names):
        metric = registry.metric(name)
        missing = [cap for cap in metric.requires if not dataset.has(cap)]
        if missing:
            status[m] = store.SKIPPED
            message[m] = f"image class {image_class!r} does not declare {', '.join(missing)}"
            continue
        try:
            values = metric.compute(make_context(metric))
            write({k: values[k] for k in metric.variables})
            status[m] = store.DONE
        except Exception as exc:
            status[m], message[m] = store.FAILED, _failure(exc, spec)[:500]
    return status, message


def _metric_names(registry: Registry, exp, scope: str) -> list[str]:
    return [name for name in exp.metrics if registry.metric(name).scope == scope]


def measure(registry: Registry, spec: RunSpec, exp, cell: Cell, dataset, model: torch.nn.Module,
            train_images: np.ndarray, device: torch.device, template) -> tuple[np.ndarray, np.ndarray]:
    """Run the experiment's cell metrics on one trained model, writing each one's values as soon
    as it is done; returns (metric_status, metric_message), one entry per cell metric."""
    forward = spec.acceleration.wrap(model, training=False)

    def context(metric):
        return MetricContext(model=model, forward=forward, dataset=dataset, train_images=train_images, data_seed=cell.seed,
                             settings=metric_settings(metric, exp), device=device, registry=registry,
                             seed=stable_seed("eval", cell.image_class, cell.n_train, cell.subset, cell.seed,
                                              metric.name))

    with spec.acceleration.float_mode(training=False):  # evaluation is strict float32
        return _run_metrics(registry, _metric_names(registry, exp, "cell"), dataset, cell.image_class, context,
                            lambda values: store.write_cell(Path(spec.store), template, cell, values), spec)


def run_pair_cell(spec: RunSpec, pair: PairCell, template) -> CellOutcome:
    """Measure the experiment's pair metrics on the models of S1 and S2 (loaded from their
    checkpoints, never trained here); write the pair's region and status."""
    start_time = time.perf_counter()
    path = Path(spec.store)
    registry = get_registry()
    preset = get_preset(registry.battery(spec.battery), spec.preset)
    _reset(path, template, pair)
    try:
        exp, dataset, class_params = _dataset(registry, spec, preset, pair)
        device = pick_device(spec.device)
        models, subsets = [], []
        for cell in pair.models():
            images = dataset.train_subset(cell.n_train, cell.subset, cell.seed)
            model, _, _ = trained_model(registry, spec, preset, cell, dataset, class_params, images, device,
                                        allow_training=False)
            models.append(model)
            subsets.append(images)

        forwards = tuple(spec.acceleration.wrap(m, training=False) for m in models)

        def context(metric):
            return PairContext(models=tuple(models), forwards=forwards, train_images=tuple(subsets), dataset=dataset,
                               data_seed=pair.seed, settings=metric_settings(metric, exp), device=device,
                               registry=registry,
                               seed=stable_seed("pair", pair.image_class, pair.n_train, pair.seed, metric.name))

        names = _metric_names(registry, exp, "pair")
        with spec.acceleration.float_mode(training=False):
            metric_status, metric_message = _run_metrics(
                registry, names, dataset, pair.image_class, context,
                lambda values: store.write_cell(path, template, pair, values), spec)
        failed = [f"{n}: {msg}" for n, s, msg in zip(names, metric_status, metric_message) if s == store.FAILED]
        status, message = (store.FAILED if failed else store.DONE), "; ".join(failed)
        store.write_cell(path, template, pair, {"pair_metric_status": metric_status,
                                                "pair_metric_message": metric_message})
    except StoreWriteError:
        raise
    except Exception as exc:  # the pair fails, the run goes on
        status, message = store.FAILED, _failure(exc, spec)
    _finish(path, template, pair, {"pair_status": status, "pair_message": message[:1000]}, status)
    return CellOutcome(pair, status, False, message, time.perf_counter() - start_time)


def run_cell(spec: RunSpec, cell: Cell | BaselineCell | PairCell, template=None) -> CellOutcome:
    """Run one cell end to end and write its region; failures are recorded, not raised."""
    path = Path(spec.store)
    if template is None:
        template = store.open_experiment(path, cell.experiment)
    if isinstance(cell, BaselineCell):
        return run_baseline_cell(spec, cell, template)
    if isinstance(cell, PairCell):
        return run_pair_cell(spec, cell, template)
    start_time = time.perf_counter()
    registry = get_registry()
    preset = get_preset(registry.battery(spec.battery), spec.preset)
    trained, loaded, resumed_at = False, False, 0
    _reset(path, template, cell)
    try:
        exp, dataset, class_params = _dataset(registry, spec, preset, cell)
        train_images = dataset.train_subset(cell.n_train, cell.subset, cell.seed)
        device = pick_device(spec.device)
        model, log, trained = trained_model(registry, spec, preset, cell, dataset, class_params, train_images, device)
        loaded, resumed_at = not trained, log.resumed_at if trained else 0
        metric_status, metric_message = measure(registry, spec, exp, cell, dataset, model, train_images, device,
                                                template)
        failed = [f"{n}: {msg}" for n, s, msg in zip(exp.metrics, metric_status, metric_message) if s == store.FAILED]
        status, message = (store.FAILED if failed else store.DONE), "; ".join(failed)
        store.write_cell(path, template, cell, {
            "metric_status": metric_status, "metric_message": metric_message,
            "train_seconds": log.seconds, "final_loss": log.final_loss, "n_parameters": count_parameters(model),
            "loss_profile": np.asarray(log.loss_profile, dtype=float) if log.loss_profile else
            np.full(store.PROFILE_BINS, np.nan), "loss_change": log.loss_change, "loss_change_se": log.loss_change_se,
        })
    except StoreWriteError:
        raise  # the store itself cannot be written: the run stops (nothing to record the failure in)
    except Exception as exc:  # the cell fails, the run goes on; the message says why
        status, message = store.FAILED, _failure(exc, spec)
    _finish(path, template, cell, {"status": status, "message": message[:1000]}, status)
    return CellOutcome(cell, status, trained, message, time.perf_counter() - start_time, resumed_at, loaded)


def lost_cell(spec: RunSpec, cell: Cell | BaselineCell | PairCell, exc: BaseException) -> CellOutcome:
    """A cell whose task never returned (the executor gave up on it: e.g. Dask's ``KilledWorker``
    after its worker died repeatedly): recorded as failed, with the reason, so that the next run
    retries it."""
    kind = integrity.kind_of(cell)
    status_var = {"cell": "status", "pair": "pair_status", "baseline": "baseline_status"}[kind]
    message = (f"the executor gave up on this cell ({type(exc).__name__}: {str(exc)[:300]}); "
               "rerun to retry it")
    path = Path(spec.store)
    store.write_cell(path, store.open_experiment(path, cell.experiment), cell,
                     {status_var: store.FAILED, status_var.replace("status", "message"): message})
    return CellOutcome(cell, store.FAILED, False, message)


def run_cell_after(spec: RunSpec, cell: Cell | BaselineCell | PairCell, *finished: CellOutcome) -> CellOutcome:
    """:func:`run_cell`, for executors that pass the outcomes of the tasks a cell depends on
    (Dask waits for them before it starts this one); the outcomes themselves are not needed."""
    return run_cell(spec, cell)
