"""The CAM methods on real backbone families: a CNN and two token models (PVT, VMamba).

Token models expose their levels as (B, C, h, w) maps, so the methods need no
special case; a module that outputs tokens is refused with a clear error.
Each backbone is skipped when its plugin has not registered it.
"""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import ShapeError
from medcam.registry import backbones

METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "cam", "random"]


def _model(name: str) -> medcam.MedcamModel:
    if name not in backbones:
        pytest.skip(f"backbone '{name}' is not registered")
    torch.manual_seed(0)
    return medcam.build_model({"backbone": {"name": name, "pretrained": False}, "num_classes": 3,
                               "preprocess": {"size": [64, 64]}}).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "pvt_v2_b0", "vmamba_tiny"])
def test_methods_on_cnn_and_token_backbones(name):
    model = _model(name)
    images = torch.rand(2, 3, 64, 64)
    level = model.feature_info.cam_level
    for method in METHODS:
        maps = medcam.explain(model, images, method, target=[0, 2])
        assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all(), method
        assert float(maps.amax()) == 1.0, method
    by_name = medcam.explain(model, images, "gradcam", layer="backbone." + model.feature_info[level].module, raw=True)
    torch.testing.assert_close(by_name, medcam.explain(model, images, "gradcam", raw=True))
    maps = medcam.explain(model, images, "gradcam", differentiable=True)
    maps.sum().backward()
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    assert first.grad is not None and torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0


@pytest.mark.slow
def test_a_token_module_is_refused_with_the_fix():
    model = _model("pvt_v2_b0")
    token_module = next(n for n, _ in model.named_modules() if n.endswith("blocks.0"))
    with pytest.raises(ShapeError, match=r"outputs \(1, \d+, \d+\), but attribution needs \(B, C, h, w\) maps"):
        medcam.explain(model, torch.rand(1, 3, 64, 64), "gradcam", layer=token_module)
