"""pyproject.toml's entry points agree with the declaration tables and the light entry modules.

Every name a bundled plugin declares (a row of a variant table, a factory or a preset
in an entry module) has exactly one entry point, and every entry point names something
declared: the list in pyproject.toml is checked here, never kept by hand unchecked.
"""
from __future__ import annotations

import importlib
import pathlib
import sys
from collections import defaultdict
from typing import Any

import pytest

from medcam.registry import META_ATTRIBUTE, REGISTRIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"


def _entry_points() -> dict[str, dict[str, str]]:
    """``{group: {name: "module:attr"}}`` of medcam's own pyproject.toml."""
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)["project"]["entry-points"]


def _by_module(group: str) -> dict[str, set[str]]:
    """``{module: {attr, ...}}`` named by one group's entry points."""
    out: dict[str, set[str]] = defaultdict(set)
    for value in _entry_points().get(group, {}).values():
        module, attr = value.split(":")
        out[module].add(attr)
    return out


def _declared(module_name: str) -> set[str]:
    """Attributes of ``module_name`` that are registry declarations: objects carrying registry metadata
    (``describe``-d factories defined there, and presets)."""
    module = importlib.import_module(module_name)
    names = set()
    for attr, obj in vars(module).items():
        if attr.startswith("_") or not hasattr(obj, META_ATTRIBUTE):
            continue
        if callable(obj) and getattr(obj, "__module__", module_name) != module_name:
            continue  # imported from elsewhere
        names.add(attr)
    return names


def test_every_group_is_a_registry():
    groups = set(_entry_points())
    assert groups <= {f"medcam.{kind}" for kind in REGISTRIES}, groups - {f"medcam.{k}" for k in REGISTRIES}


def test_every_entry_point_names_an_existing_object():
    for group, names in _entry_points().items():
        for name, value in names.items():
            module, attr = value.split(":")
            assert hasattr(importlib.import_module(module), attr), f"{group} {name} = {value}: no such attribute"


@pytest.mark.parametrize("group", sorted(set(_entry_points()) - {"medcam.weights"}))
def test_entry_modules_declare_exactly_what_is_registered(group):
    """Each declaration (factory or preset) of an entry module has an entry point in some group, and
    each entry point of this group names a declaration."""
    all_registered: dict[str, set[str]] = defaultdict(set)
    for other in _entry_points():
        for module, attrs in _by_module(other).items():
            all_registered[module] |= attrs
    for module, attrs in _by_module(group).items():
        declared = _declared(module)
        assert attrs <= declared, f"{group}: {module} has no declaration for {sorted(attrs - declared)}"
        unregistered = declared - all_registered[module]
        assert not unregistered, f"{module} declares {sorted(unregistered)} but pyproject.toml registers none of them"


def _names(group: str, module: str) -> set[str]:
    return {name for name, value in _entry_points()[group].items() if value.split(":")[0] == module}


def test_timm_variant_table_is_registered_one_to_one():
    from medcam_timm.variants import VARIANTS

    registered = _names("medcam.backbones", "medcam_timm.entries")
    assert registered - {"timm"} == set(VARIANTS)
    for name in VARIANTS:
        assert _entry_points()["medcam.backbones"][name] == f"medcam_timm.entries:{name}"


def test_vmamba_configuration_table_is_registered_one_to_one():
    from medcam_vmamba.configs import ALIASES, CONFIGS

    assert _names("medcam.backbones", "medcam_vmamba.entries") - {"vmamba"} == set(CONFIGS) | set(ALIASES)
    assert _names("medcam.models", "medcam_vmamba.entries") == {f"{name}_in1k" for name in CONFIGS}


def test_tiramisu_table_is_registered_one_to_one():
    from medcam_seg.configs import TIRAMISU_CONFIGS

    assert {n for n in _names("medcam.backbones", "medcam_seg.entries")} == \
        {f"tiramisu{d}_encoder" for d in TIRAMISU_CONFIGS}
    assert {n for n in _names("medcam.segmenters", "medcam_seg.entries") if n.startswith("tiramisu")} == \
        {f"tiramisu{d}" for d in TIRAMISU_CONFIGS}


def test_the_check_catches_a_missing_and_an_extra_entry_point(monkeypatch):
    """The comparison above fails on a table row without an entry point and on an undeclared name."""
    points: dict[str, Any] = {group: dict(names) for group, names in _entry_points().items()}
    del points["medcam.backbones"]["resnet50"]
    points["medcam.backbones"]["resnet51"] = "medcam_timm.entries:resnet51"
    monkeypatch.setattr(sys.modules[__name__], "_entry_points", lambda: points)
    with pytest.raises(AssertionError, match="resnet51"):
        test_entry_modules_declare_exactly_what_is_registered("medcam.backbones")
    del points["medcam.backbones"]["resnet51"]
    with pytest.raises(AssertionError, match="resnet50"):
        test_entry_modules_declare_exactly_what_is_registered("medcam.backbones")


def test_bundled_dataset_layouts_are_registered():
    from medcam.data.base import MedcamDataset
    from medcam.data.layouts import DatasetLayout

    points = _entry_points()["medcam.datasets"]
    assert set(points) == {"busi", "imagefolder", "nih", "masks", "wsol_list"}
    for name, value in points.items():
        assert value == f"medcam.data.layouts:{name}"
        layout = getattr(importlib.import_module("medcam.data.layouts"), name)
        assert isinstance(layout, DatasetLayout) and issubclass(layout.load(), MedcamDataset), value
