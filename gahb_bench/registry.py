"""The plugin manager: default plugins, entry points, the allow-list, look-ups and clashes.

Built-in features are plugins like any other (the datasette/llm pattern): each module in
:data:`DEFAULT_PLUGINS` implements one or more hooks of :mod:`gahb_bench.hookspecs`. Third-party
plugins are loaded from the ``gahb_bench`` entry-point group of installed distributions; when
the environment variable ``GAHB_LOAD_PLUGINS`` is set (a comma-separated list of distribution or
entry-point names, possibly empty) only those entry points are loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import pluggy

from gahb_bench import hookspecs
from gahb_bench.contracts import Architecture, Baseline, Battery, ImageClass, Metric, Reference
from gahb_bench.errors import PluginError, UnknownNameError

PROJECT = "gahb_bench"
ENTRY_POINT_GROUP = "gahb_bench"
ALLOW_LIST_ENV = "GAHB_LOAD_PLUGINS"

DEFAULT_PLUGINS = (
    "gahb_bench.architectures.unet",
    "gahb_bench.architectures.bfcnn",
    "gahb_bench.image_classes.photographs",
    "gahb_bench.image_classes.calpha",
    "gahb_bench.image_classes.gaussian",
    "gahb_bench.image_classes.prepared",
    "gahb_bench.image_classes.disks",
    "gahb_bench.image_classes.ray",
    "gahb_bench.image_classes.sine_cone",
    "gahb_bench.image_classes.shuffled",
    "gahb_bench.metrics.denoising_curves",
    "gahb_bench.metrics.memorization",
    "gahb_bench.metrics.model_variance",
    "gahb_bench.metrics.paired_samples",
    "gahb_bench.metrics.optimality",
    "gahb_bench.metrics.psnr_slopes",
    "gahb_bench.metrics.tangent_space",
    "gahb_bench.metrics.gahb",
    "gahb_bench.metrics.reference_agreement",
    "gahb_bench.baselines.wavelet",
    "gahb_bench.baselines.image_mean",
    "gahb_bench.baselines.bandlets",
    "gahb_bench.references.empirical",
    "gahb_bench.references.gaussian",
    "gahb_bench.references.local",
    "gahb_bench.batteries.standard",
)

#: kind → (hook name, record type)
KINDS: dict[str, tuple[str, type]] = {
    "architectures": ("gahb_register_architectures", Architecture),
    "image-classes": ("gahb_register_image_classes", ImageClass),
    "metrics": ("gahb_register_metrics", Metric),
    "batteries": ("gahb_register_batteries", Battery),
    "baselines": ("gahb_register_baselines", Baseline),
    "references": ("gahb_register_references", Reference),
}

#: kind → the singular used in messages
LABELS = {"architectures": "architecture", "image-classes": "image class", "metrics": "metric",
          "batteries": "battery", "baselines": "baseline", "references": "reference"}

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from: its name, distribution and version."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]

    @property
    def origin(self) -> str:
        """``'name' (distribution version)`` for messages."""
        return f"{self.name!r} ({' '.join(filter(None, (self.distribution, self.version)))})"


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A registered record and the plugin that registered it."""

    record: T
    plugin: PluginInfo


def _own_version() -> str:
    from gahb_bench import __version__

    return __version__


def _normalized(name: str) -> str:
    """A distribution or entry-point name as PEP 503 compares them (``gahb_zoo`` = ``gahb-zoo``)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _allow_list() -> set[str] | None:
    """The names in ``GAHB_LOAD_PLUGINS`` (normalized), without gahb-bench itself (its built-ins
    always load), or None when it is not set."""
    allow = os.environ.get(ALLOW_LIST_ENV)
    if allow is None:
        return None
    return {_normalized(n) for n in allow.split(",") if n.strip()} - {"gahb-bench"}


def _names(entry_point: metadata.EntryPoint) -> set[str]:
    """The names the allow-list may give an entry point by: its own and its distribution's."""
    return {_normalized(entry_point.name), _normalized(entry_point.dist.name if entry_point.dist else "")} - {""}


def _check_allow_list(entry_points) -> None:
    """A name in the allow-list that no installed plugin has is a typo or a missing install:
    a :class:`PluginError` (else the plugin would be missing later, as an unknown name)."""
    names = _allow_list()
    if not names:
        return
    known = set().union(*(_names(ep) for ep in entry_points)) if entry_points else set()
    unknown = sorted(names - known)
    if unknown:
        installed = ", ".join(sorted(f"{ep.name} ({ep.dist.name if ep.dist else '?'})" for ep in entry_points))
        raise PluginError(f"{ALLOW_LIST_ENV} names {', '.join(map(repr, unknown))}, which no installed plugin is; "
                          f"installed plugins (entry point and distribution): {installed or 'none'}")


def _allowed(entry_point: metadata.EntryPoint) -> bool:
    names = _allow_list()
    return names is None or bool(_names(entry_point) & names)


def build_plugin_manager() -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A plugin manager with the default plugins and the allowed entry points registered."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    version = _own_version()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        infos[module_name] = PluginInfo(module_name, "gahb-bench", version, _hooks(pm, module))
    entry_points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    _check_allow_list(entry_points)
    for ep in entry_points:
        if not _allowed(ep):
            continue
        dist = ep.dist.name if ep.dist else "?"
        dist_version = ep.dist.version if ep.dist else "?"
        if ep.name in infos:
            raise PluginError(
                f"two plugins are named {ep.name!r}: from {infos[ep.name].distribution} and from {dist} "
                f"{dist_version}; uninstall one or restrict plugins with {ALLOW_LIST_ENV}"
            )
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin: name it, do not crash opaquely
            raise PluginError(
                f"plugin {ep.name!r} from distribution {dist} {dist_version} failed to load "
                f"({type(exc).__name__}: {exc}); fix or uninstall it, or exclude it with "
                f"{ALLOW_LIST_ENV}=<comma list of plugins to load>"
            ) from exc
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {ep.name!r} from distribution {dist} {dist_version} is invalid: {exc}") from exc
        infos[ep.name] = PluginInfo(ep.name, dist, dist_version, _hooks(pm, plugin))
    return pm, infos


def _hooks(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


class Registry:
    """Everything the plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]):
        self.plugin_manager = pm
        self.plugins = infos
        self._items: dict[str, dict[str, Registered[Any]]] = {}
        for kind, (hook_name, record_type) in KINDS.items():
            self._items[kind] = self._collect(kind, hook_name, record_type)

    def _collect(self, kind: str, hook_name: str, record_type: type) -> dict[str, Registered[Any]]:
        found: dict[str, Registered[Any]] = {}
        caller = getattr(self.plugin_manager.hook, hook_name)
        # Each implementation is called with its own register callback, so that every record is
        # attributed to the plugin that registered it (needed to report clashes by distribution).
        for impl in caller.get_hookimpls():
            info = self.plugins[impl.plugin_name]

            def register(record: Any, _info: PluginInfo = info) -> None:
                if not isinstance(record, record_type):
                    raise PluginError(
                        f"plugin {_info.origin} registered "
                        f"{type(record).__name__} through {hook_name}; expected gahb_bench.{record_type.__name__}"
                    )
                if record.name in found:
                    other = found[record.name].plugin
                    raise PluginError(
                        f"{LABELS[kind]} name {record.name!r} is registered twice: by plugin "
                        f"{other.origin} and by plugin {_info.origin}; "
                        f"uninstall one or restrict plugins with {ALLOW_LIST_ENV}"
                    )
                found[record.name] = Registered(record, _info)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {info.origin} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return found

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (a key of :data:`KINDS`)."""
        return sorted(self._items[kind])

    def entry(self, kind: str, name: str) -> Registered[Any]:
        """The registration of ``name``, or a clear error listing the known names."""
        items = self._items[kind]
        if name not in items:
            known = ", ".join(sorted(items)) or "none"
            raise UnknownNameError(f"unknown {LABELS[kind]} {name!r}; known: {known}")
        return items[name]

    def architecture(self, name: str) -> Architecture:
        return self.entry("architectures", name).record

    def image_class(self, name: str) -> ImageClass:
        return self.entry("image-classes", name).record

    def metric(self, name: str) -> Metric:
        return self.entry("metrics", name).record

    def battery(self, name: str) -> Battery:
        return self.entry("batteries", name).record

    def baseline(self, name: str) -> Baseline:
        return self.entry("baselines", name).record

    def reference(self, name: str) -> Reference:
        return self.entry("references", name).record

    def items(self, kind: str) -> list[Registered[Any]]:
        return [self._items[kind][n] for n in self.names(kind)]


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (built on first use; :func:`reset_registry` forgets it)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(*build_plugin_manager())
    return _REGISTRY


def reset_registry() -> None:
    """Forget the cached registry (after installing a plugin, or changing the allow-list)."""
    global _REGISTRY
    _REGISTRY = None


def register_extra(plugin: object, name: str | None = None) -> Callable[[], None]:
    """Register an in-process plugin object (in a notebook or a test); returns an undo.

    The registry is rebuilt at once, so a clash or a broken registration raises here.
    """
    global _REGISTRY
    registry = get_registry()
    pm, infos = registry.plugin_manager, dict(registry.plugins)
    plugin_name = pm.register(plugin, name=name)
    infos[plugin_name] = PluginInfo(plugin_name, "<in-process>", "", _hooks(pm, plugin))
    try:
        _REGISTRY = Registry(pm, infos)
    except Exception:
        pm.unregister(name=plugin_name)
        raise

    def undo() -> None:
        pm.unregister(name=plugin_name)
        reset_registry()

    return undo
