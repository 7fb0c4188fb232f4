"""The plugin manager: defaults, entry points, the allow-list, clashes, broken plugins."""

import importlib.metadata as metadata
import types

import pytest

import gahb_bench
from gahb_bench import registry as reg
from gahb_bench.errors import PluginError, UnknownNameError


def _plugin(**hooks):
    return types.SimpleNamespace(**{name: gahb_bench.hookimpl(fn) for name, fn in hooks.items()})


def _arch(name):
    def gahb_register_architectures(register):
        register(gahb_bench.Architecture(name=name, build=lambda c, s: None, params={}))
    return gahb_register_architectures


def test_builtins_are_registered_as_default_plugins():
    r = reg.get_registry()
    assert {"unet", "bfcnn"} <= set(r.names("architectures"))
    assert "photographs" in r.names("image-classes")
    assert "denoising_curves" in r.names("metrics")
    assert "standard" in r.names("batteries")
    assert r.entry("architectures", "unet").plugin.distribution == "gahb-bench"


def test_template_plugin_loads_from_its_entry_point():
    entry = reg.get_registry().entry("architectures", "tiny-cnn")
    assert entry.plugin.distribution == "gahb-plugin-template"
    assert entry.plugin.hooks == ("gahb_register_architectures",)


def test_allow_list_restricts_entry_points(monkeypatch):
    monkeypatch.setenv("GAHB_LOAD_PLUGINS", "")
    reg.reset_registry()
    assert "tiny-cnn" not in reg.get_registry().names("architectures")
    monkeypatch.setenv("GAHB_LOAD_PLUGINS", "gahb-plugin-template")
    reg.reset_registry()
    assert "tiny-cnn" in reg.get_registry().names("architectures")


def test_an_allow_list_name_no_plugin_has_is_an_error_naming_the_installed_ones(monkeypatch):
    monkeypatch.setenv("GAHB_LOAD_PLUGINS", "template, gahb-zoo-typo")  # an entry point's name, and a typo
    with pytest.raises(PluginError, match=r"names 'gahb-zoo-typo', which no installed plugin is; .*"
                                          r"template \(gahb-plugin-template\)"):
        reg.build_plugin_manager()
    monkeypatch.setenv("GAHB_LOAD_PLUGINS", "template")
    reg.reset_registry()
    assert "tiny-cnn" in reg.get_registry().names("architectures")
    assert "mlp" not in reg.get_registry().names("architectures")  # gahb-zoo's, not listed
    monkeypatch.setenv("GAHB_LOAD_PLUGINS", "gahb_zoo, gahb-bench")  # PEP 503 spellings; the built-ins' own name
    reg.reset_registry()
    assert {"mlp", "unet"} <= set(reg.get_registry().names("architectures"))


def test_same_name_from_two_plugins_names_both_distributions():
    with pytest.raises(PluginError, match=r"'unet' is registered twice.*gahb-bench.*<in-process>"):
        reg.register_extra(_plugin(gahb_register_architectures=_arch("unet")), name="impostor")
    assert reg.get_registry().entry("architectures", "unet").plugin.distribution == "gahb-bench"


def test_wrong_record_type_is_a_plugin_error():
    def gahb_register_metrics(register):
        register(gahb_bench.Architecture(name="x", build=lambda c, s: None))

    with pytest.raises(PluginError, match="expected gahb_bench.Metric"):
        reg.register_extra(_plugin(gahb_register_metrics=gahb_register_metrics), name="confused")


def test_broken_entry_point_is_named(monkeypatch):
    class Broken(metadata.EntryPoint):
        def load(self):
            raise ImportError("No module named 'missing_dependency'")

    ep = Broken(name="broken", value="broken_plugin", group="gahb_bench")
    real = metadata.entry_points

    def fake(**kw):
        return list(real(**kw)) + [ep] if kw.get("group") == "gahb_bench" else real(**kw)

    monkeypatch.setattr(reg.metadata, "entry_points", fake)
    with pytest.raises(PluginError, match=r"plugin 'broken'.*failed to load.*missing_dependency.*GAHB_LOAD_PLUGINS"):
        reg.build_plugin_manager()


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownNameError, match=r"unknown architecture 'nope'; known: .*bfcnn.*unet"):
        reg.get_registry().architecture("nope")


@pytest.mark.parametrize("name", ["Has Space", "UPPER", "", "-lead"])
def test_record_names_are_validated(name):
    with pytest.raises(ValueError, match="invalid"):
        gahb_bench.Architecture(name=name, build=lambda c, s: None)


def test_params_must_be_identifiers():
    with pytest.raises(ValueError, match="not a Python identifier"):
        gahb_bench.Architecture(name="x", build=lambda c, s: None, params={"bad-key": 1})


@pytest.mark.parametrize("biases, match", [({"colour": "blue"}, "bias 'colour': unknown axis"),
                                           ({"locality": ""}, "description of 1 to 60"),
                                           ({"locality": "x" * 61}, "description of 1 to 60"),
                                           ({"locality": 1}, "description of 1 to 60"),
                                           (["locality"], "must be a mapping")])
def test_declared_biases_are_validated(biases, match):
    with pytest.raises(ValueError, match=match):
        gahb_bench.Architecture(name="x", build=lambda c, s: None, biases=biases)


def test_builtins_declare_every_axis_of_bias():
    from gahb_bench.biases import AXES

    r = reg.get_registry()
    for name in ("unet", "bfcnn"):
        assert set(r.architecture(name).biases) == {a.key for a in AXES}
    assert r.architecture("unet").biases["multiscale"].startswith("yes")
    assert r.architecture("bfcnn").biases["multiscale"].startswith("no")
