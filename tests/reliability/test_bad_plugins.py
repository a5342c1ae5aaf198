"""Bad plugins: one that fails to import, two that claim one name, factories and modules that break the
contract. Each is named (package, entry point) in the error; the other plugins keep working."""
from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import medcam
from medcam.errors import NameClashError, PluginError, SpecError
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import Registry, attributions, backbones, heads, segmenters

from _reliability import expect_error, random_images


def _distribution(root: Path, name: str, entries: dict[str, str]) -> md.Distribution:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[medcam.backbones]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    return md.PathDistribution(info)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "rel_plugin_mod.py").write_text(textwrap.dedent('''
        def good(in_chans: int = 3):
            return "good"

        NOT_CALLABLE = 42
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "rel_plugin_mod"
    sys.modules.pop("rel_plugin_mod", None)


def _registry(*dists: md.Distribution) -> Registry:
    reg = Registry("backbones", injected=("in_chans",))
    reg.use_entry_points(lambda: [ep for d in dists for ep in d.entry_points if ep.group == reg.group])
    return reg


def test_a_plugin_that_fails_to_import(tmp_path, plugin_module):
    reg = _registry(_distribution(tmp_path, "broken-pkg", {"ghost": "rel_no_such_module:factory",
                                                           "good": f"{plugin_module}:good"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.infos()
        reg.infos()
    assert len([w for w in caught if "broken-pkg" in str(w.message)]) == 1  # listing warns once
    err = expect_error(lambda: reg.get("ghost"), PluginError, "broken-pkg")
    assert "rel_no_such_module" in str(err) and isinstance(err.__cause__, ImportError)
    assert reg.get("good")() == "good"  # the broken entry does not break the others


def test_two_plugins_claim_one_name(tmp_path, plugin_module):
    reg = _registry(_distribution(tmp_path / "a", "pkg-a", {"same": f"{plugin_module}:good"}),
                    _distribution(tmp_path / "b", "pkg-b", {"same": f"{plugin_module}:good"}))
    err = expect_error(lambda: reg.get("same"), NameClashError, "pkg-a")
    assert "pkg-b" in str(err)


def test_an_entry_point_that_names_no_factory(tmp_path, plugin_module):
    reg = _registry(_distribution(tmp_path, "odd-pkg", {"odd": f"{plugin_module}:NOT_CALLABLE",
                                                        "gone": f"{plugin_module}:missing_attribute"}))
    expect_error(lambda: reg.get("odd"), PluginError, "odd-pkg")
    expect_error(lambda: reg.get("gone"), PluginError, "missing_attribute")


class _NoInfo(nn.Module):
    def forward(self, x):
        return [x]


class _TensorHead(nn.Module):
    def __init__(self, feature_info, num_classes):
        super().__init__()
        self.fc = nn.Linear(feature_info[-1].channels, num_classes)

    def forward(self, features, labels=None):
        return self.fc(features[-1].mean((2, 3)))  # a tensor, not a ModelOutput


class _Level(nn.Module):
    def __init__(self, in_chans):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 4, 3, 2, 1)
        self.feature_info = FeatureInfo([FeatureLevel(4, 2, "conv")])

    def forward(self, x):
        return [self.conv(x)]


def _flat_segmenter(in_chans, num_classes):
    return nn.Sequential(nn.Conv2d(in_chans, num_classes, 1), nn.Flatten())  # (B, K*H*W), not (B, K, H, W)


@pytest.fixture
def contract_breakers():
    parts = [(backbones, lambda in_chans=3: _NoInfo(), "rel_no_info"),
             (backbones, lambda pretrained=False: _NoInfo(), "rel_no_in_chans"),
             (backbones, lambda in_chans=3: _Level(in_chans), "rel_level"),
             (heads, lambda feature_info, num_classes: _TensorHead(feature_info, num_classes), "rel_tensor_head"),
             (segmenters, _flat_segmenter, "rel_flat_seg"),
             (attributions, lambda layer=None: "not a method", "rel_not_a_method")]
    for registry, factory, name in parts:
        registry.register(factory, name=name)
    yield
    for registry, _, name in parts:
        registry.unregister(name)


CONTRACT = [
    pytest.param(lambda: medcam.build_model({"backbone": "rel_no_info", "num_classes": 2}), PluginError,
                 "has no FeatureInfo", id="backbone-without-feature-info"),
    pytest.param(lambda: medcam.build_model({"backbone": "rel_no_in_chans", "num_classes": 2}), PluginError,
                 "must accept the parameter 'in_chans'", id="factory-without-injected-parameter"),
    pytest.param(lambda: medcam.build_model({"backbone": "rel_level", "head": "rel_tensor_head",
                                             "num_classes": 2})(random_images()), PluginError,
                 "returned Tensor, not ModelOutput", id="head-returns-a-tensor"),
    pytest.param(lambda: medcam.build_segmenter({"name": "rel_flat_seg"})(random_images()), PluginError,
                 "must return (B, K, H, W) logits", id="segmenter-returns-flat-logits"),
    pytest.param(lambda: medcam.explain(medcam.build_model({"backbone": "rel_level", "num_classes": 2}),
                                        random_images(), "rel_not_a_method"), SpecError,
                 "not a medcam.attribution.Attribution", id="attribution-factory-returns-something-else"),
]


@pytest.mark.usefixtures("contract_breakers")
@pytest.mark.parametrize("call, error, fragment", CONTRACT)
def test_a_part_that_breaks_the_contract(call, error, fragment):
    expect_error(call, error, fragment)
    assert torch.is_tensor(medcam.explain(medcam.build_model({"backbone": "rel_level", "num_classes": 2}),
                                          random_images()))  # the registries still work
