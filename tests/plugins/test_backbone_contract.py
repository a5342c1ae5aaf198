"""The backbone contract (medcam/features.py), checked for EVERY registered backbone.

The parameters are generated from the registry, so a backbone any plugin adds
(bundled or third party) is tested without editing this file. For each name and
for 1- and 3-channel input, one model is built (``pretrained=False``, default
parameters) and shared by all checks:

* the registry metadata (channels, strides, cam_level, modules), when declared,
  equals the built ``feature_info``;
* ``forward`` returns ``len(feature_info)`` maps ``(B, C_i, ceil(H/s_i), ceil(W/s_i))``;
* the declared module of each level exists inside the backbone;
* one backward pass reaches the input and the parameters with finite gradients;
* ``forward_from(levels[k], k)`` returns maps shaped like ``levels[k + 1:]`` and equal
  to them (when implemented; a backbone whose levels are not the maps its next
  stage consumes, e.g. one with per-level output norms, sets ``forward_from_exact = False``
  and only the shapes are checked).

Input sizes honour the metadata: ``input_size`` ([H, W] or an int) if declared,
otherwise the smallest multiple of ``input_multiple`` that is at least 64.
Namespace entries (``timm``) are tested through their ``example`` model. A
backbone whose check takes more than a few CPU-seconds declares ``test_slow=True``
in its metadata and is marked ``slow``.
"""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from medcam.build import build_backbone
from medcam.capabilities import RescorableBackbone
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones

MIN_SIZE = 64
BATCH = 2


def _declares_slow(name: str) -> bool:
    """``test_slow=True`` in the metadata: the check takes more than a few CPU-seconds."""
    try:
        return bool(backbones.info(name).get("test_slow"))
    except Exception:  # a plugin that fails to load fails in its own test, not at collection
        return False


def _params() -> list[Any]:
    out = []
    for name in backbones.list():
        marks = [pytest.mark.slow] if _declares_slow(name) else []
        for in_chans in (1, 3):
            out.append(pytest.param(name, in_chans, marks=marks, id=f"{name}-{in_chans}ch"))
    return out


def _target(name: str, info: dict[str, Any]) -> str:
    """The concrete name to build: the entry itself, or ``<namespace>/<example>``."""
    if not info.get("namespace"):
        return name
    example = info.get("example")
    if not example:
        pytest.fail(f"namespace backbone '{name}' declares no 'example' model in its metadata to test")
    return f"{name}/{example}"


def _input_hw(info: dict[str, Any]) -> tuple[int, int]:
    size = info.get("input_size")
    if size is not None:
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    multiple = int(info.get("input_multiple", 1))
    side = math.ceil(MIN_SIZE / multiple) * multiple
    return side, side


def _check_metadata(name: str, info: dict[str, Any], built: FeatureInfo) -> None:
    if info.get("channels") is None:
        assert info.get("namespace"), f"'{name}': backbones must declare channels and strides in their metadata"
        return
    modules = info.get("modules") or [""] * len(info["channels"])
    declared = FeatureInfo([FeatureLevel(c, s, m if info.get("modules") else lv.module)
                            for c, s, m, lv in zip(info["channels"], info["strides"], modules, built)],
                           cam_level=info.get("cam_level", -1))
    assert len(info["channels"]) == len(info["strides"]) == len(built), (
        f"'{name}': metadata declares {len(info['channels'])} levels, the model has {len(built)}")
    assert declared == built, f"'{name}': metadata {declared} {modules} != built {built} {built.modules()}"


@pytest.mark.parametrize(("name", "in_chans"), _params())
def test_backbone_contract(name: str, in_chans: int) -> None:
    info = backbones.info(name)
    model = build_backbone({"name": _target(name, info)}, in_chans=in_chans)
    feature_info: FeatureInfo = model.feature_info
    _check_metadata(name, info, feature_info)
    for level in feature_info:
        if level.module:
            model.get_submodule(level.module)  # raises AttributeError if the declared module does not exist

    h, w = _input_hw(info)
    x = torch.randn(BATCH, in_chans, h, w, requires_grad=True)
    model.train()
    levels = list(model(x))
    assert len(levels) == len(feature_info), f"{len(levels)} maps for {len(feature_info)} declared levels"
    for i, (fmap, level) in enumerate(zip(levels, feature_info)):
        expected = (BATCH, level.channels, math.ceil(h / level.stride), math.ceil(w / level.stride))
        assert tuple(fmap.shape) == expected, f"level {i}: {tuple(fmap.shape)} != {expected} for input {(h, w)}"
    loss = sum(fmap.float().square().mean() for fmap in levels)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)

    if not isinstance(model, RescorableBackbone) or not getattr(model, "supports_forward_from", True):
        return
    model.eval()
    exact = model.forward_from_exact
    with torch.no_grad():
        levels = list(model(x.detach()))
        for k in range(len(levels)):
            rest = list(model.forward_from(levels[k], k))
            assert [tuple(t.shape) for t in rest] == [tuple(t.shape) for t in levels[k + 1:]], (
                f"forward_from(levels[{k}], {k}) must return maps shaped like levels[{k + 1}:]")
            for j, (a, b) in enumerate(zip(rest, levels[k + 1:]) if exact else ()):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=lambda m: (
                    f"forward_from(levels[{k}], {k}) does not reproduce level {k + 1 + j}: {m}. If this backbone's "
                    f"levels are not the maps its next stage consumes (e.g. per-level output norms), set "
                    f"`forward_from_exact = False` on the module"))
