"""Registry: names, registration, entry-point discovery, clashes, broken plugins, autoload switch."""
from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from medcam.errors import NameClashError, PluginError, UnknownNameError
from medcam.registry import (AUTOLOAD_ENV, Preset, Registry, close_matches, describe, did_you_mean, get_registry,
                             normalize_name)


def make_distribution(root: Path, name: str, group: str, entries: dict[str, str]) -> md.Distribution:
    """A real installed-looking distribution (``<name>-1.0.dist-info``) under ``root``."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    return md.PathDistribution(info)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A tiny importable plugin module ``fake_plugin_mod`` with two factories."""
    (tmp_path / "fake_plugin_mod.py").write_text(textwrap.dedent('''
        from medcam.registry import describe

        @describe(summary="first fake", citation="Doe 2020", channels=[8], strides=[4])
        def alpha(in_chans: int = 3, depth: int = 2):
            return ("alpha", in_chans, depth)

        def beta(in_chans: int = 3):
            return "beta"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_plugin_mod"
    sys.modules.pop("fake_plugin_mod", None)


def empty_registry(kind: str, **kwargs) -> Registry:
    """A registry that sees no installed entry points."""
    reg = Registry(kind, **kwargs)
    reg.use_entry_points(lambda: [])
    return reg


def registry_with(dists: list[md.Distribution], kind: str = "backbones") -> Registry:
    reg = Registry(kind, injected=("in_chans",))
    reg.use_entry_points(lambda: [ep for d in dists for ep in d.entry_points if ep.group == reg.group])
    return reg


def test_normalize_name():
    assert normalize_name(" ResNet-50 ") == "resnet_50"
    with pytest.raises(TypeError):
        normalize_name("")


def test_register_decorator_call_and_lookup():
    reg = empty_registry("heads")

    @reg.register
    def My_Head():  # noqa: N802 - the name is normalized
        return 1

    reg.register(lambda: 2, name="other-head")
    assert reg.list() == ["my_head", "other_head"]
    assert reg.get("MY-HEAD") is My_Head
    assert reg.get("other_head")() == 2
    assert "my_head" in reg and "nope" not in reg


def test_register_clash_names_both_providers():
    reg = empty_registry("heads")
    reg.register(lambda: 1, name="dup")
    with pytest.raises(NameClashError) as err:
        reg.register(lambda: 2, name="dup")
    message = str(err.value)
    assert message.count("test_registry:") == 2 and "already registered" in message
    reg.register(lambda: 3, name="dup", override=True)
    assert reg.get("dup")() == 3


def test_unknown_name_hint_exact():
    reg = empty_registry("backbones")
    for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vmamba_tiny"):
        reg.register(lambda: None, name=n)
    with pytest.raises(UnknownNameError) as err:
        reg.get("resnet5")
    assert str(err.value) == "unknown backbone 'resnet5'; did you mean 'resnet50'? (medcam list backbones)"
    assert isinstance(err.value, KeyError)
    assert callable(reg.get("VMamba-Tiny "))  # normalized before lookup
    with pytest.raises(UnknownNameError, match=r"did you mean 'vmamba_tiny'\?"):
        reg.get("vmamba-tyni")
    with pytest.raises(UnknownNameError) as err:
        reg.get("zzzz")
    assert str(err.value) == "unknown backbone 'zzzz' (medcam list backbones)"


def test_close_matches():
    assert close_matches("pretrianed", ["pretrained", "in_chans", "checkpoint_path"]) == ["pretrained"]
    assert did_you_mean("resnt50", ["resnet50", "vgg16"]) == "; did you mean 'resnet50'?"
    assert did_you_mean("qqq", ["resnet50"]) == ""


def test_list_glob_natural_sort_and_exclude():
    reg = empty_registry("backbones")
    for n in ("resnet101", "resnet18", "resnet50", "vgg16"):
        reg.register(lambda: None, name=n)
    assert reg.list("resnet*") == ["resnet18", "resnet50", "resnet101"]
    assert reg.list(["vgg*", "resnet1*"], exclude="resnet101") == ["resnet18", "vgg16"]


def test_entry_points_are_lazy_and_carry_metadata(tmp_path, plugin_module):
    dist = make_distribution(tmp_path / "site", "fake-plugin", "medcam.backbones",
                             {"alpha": f"{plugin_module}:alpha", "beta": f"{plugin_module}:beta"})
    reg = registry_with([dist])
    assert reg.list() == ["alpha", "beta"]
    assert plugin_module not in sys.modules  # listing imports nothing
    info = reg.info("alpha")
    assert info["provider"] == "fake-plugin" and info["summary"] == "first fake"
    assert info["channels"] == [8] and info["strides"] == [4] and info["citation"] == "Doe 2020"
    assert info["parameters"] == {"depth": 2}  # injected in_chans is not a user parameter
    assert reg.get("alpha")(in_chans=1) == ("alpha", 1, 2)


def test_entry_point_clash_between_distributions(tmp_path, plugin_module):
    a = make_distribution(tmp_path / "a", "pkg-a", "medcam.backbones", {"alpha": f"{plugin_module}:alpha"})
    b = make_distribution(tmp_path / "b", "pkg-b", "medcam.backbones", {"Alpha": f"{plugin_module}:beta"})
    reg = registry_with([a, b])
    assert reg.list() == ["alpha"]
    with pytest.raises(NameClashError) as err:
        reg.get("alpha")
    assert "'pkg-a'" in str(err.value) and "'pkg-b'" in str(err.value)
    # the same declaration seen twice (a distribution twice on sys.path) is not a clash
    reg2 = registry_with([a, a])
    assert reg2.get("alpha")(in_chans=3)[0] == "alpha"


def test_code_registration_clashing_with_entry_point(tmp_path, plugin_module):
    dist = make_distribution(tmp_path / "site", "fake-plugin", "medcam.backbones", {"alpha": f"{plugin_module}:alpha"})
    reg = registry_with([dist])
    with pytest.raises(NameClashError, match="fake-plugin"):
        reg.register(lambda: None, name="alpha")


def test_broken_plugin_warns_once_when_listing_and_raises_when_used(tmp_path, plugin_module):
    dist = make_distribution(tmp_path / "site", "broken-pkg", "medcam.backbones",
                             {"ghost": "medcam_no_such_module_xyz:factory", "alpha": f"{plugin_module}:alpha"})
    reg = registry_with([dist])
    assert reg.list() == ["alpha", "ghost"]  # names come from metadata, nothing is imported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = reg.infos()
        reg.infos()
    broken = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(broken) == 1 and "broken-pkg" in str(broken[0].message)
    assert [r["name"] for r in rows] == ["alpha", "ghost"] and "error" in rows[1]
    with pytest.raises(PluginError) as err:
        reg.get("ghost")
    assert "broken-pkg" in str(err.value) and "medcam_no_such_module_xyz" in str(err.value)
    assert isinstance(err.value.__cause__, ModuleNotFoundError)
    assert reg.get("alpha")(in_chans=3)[0] == "alpha"  # one broken entry does not break the others


def test_autoload_switch_keeps_only_bundled(tmp_path, plugin_module, monkeypatch):
    bundled = make_distribution(tmp_path / "m", "medcam", "medcam.backbones", {"alpha": f"{plugin_module}:alpha"})
    third = make_distribution(tmp_path / "t", "third-party", "medcam.backbones", {"beta": f"{plugin_module}:beta"})
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert registry_with([bundled, third]).list() == ["alpha"]
    monkeypatch.setenv(AUTOLOAD_ENV, "0")
    assert registry_with([bundled, third]).list() == ["alpha", "beta"]


def test_namespace_lookup():
    reg = empty_registry("backbones", namespaces=True)

    @reg.register(name="hub")
    @describe(summary="namespace", namespace=True)
    def hub(model_name: str, in_chans: int = 3):
        return model_name, in_chans

    assert reg.get("hub/convnext_tiny")(in_chans=1) == ("convnext_tiny", 1)
    reg.register(lambda: None, name="plain")
    with pytest.raises(UnknownNameError):
        reg.get("plain/x")  # only entries declared as namespaces accept a suffix


def test_preset_and_get_registry():
    p = Preset({"backbone": "tiny_cnn", "num_classes": 2}, summary="s")
    assert dict(p) == {"backbone": "tiny_cnn", "num_classes": 2}
    assert get_registry("backbone") is get_registry("backbones")
    with pytest.raises(UnknownNameError, match="did you mean 'losses'"):
        get_registry("loses")


def test_bundled_plugins_are_registered_through_entry_points():
    from medcam.registry import backbones, heads, losses, models

    entry = backbones.entry("tiny_cnn")
    assert entry.provider == "medcam" and entry.entry_point is not None
    assert entry.value == "medcam_basic.entries:tiny_cnn"
    assert "linear" in heads and "ce" in losses and "tiny_classifier" in models
