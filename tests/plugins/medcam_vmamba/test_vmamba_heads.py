"""medcam_vmamba.heads: the official classifier (LayerNorm -> GAP -> Linear) as a medcam head."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel
from medcam_vmamba.heads import VMambaClassifierHead

INFO = FeatureInfo([FeatureLevel(8, 16, "a"), FeatureLevel(12, 32, "b")])


def _features() -> list[torch.Tensor]:
    return [torch.randn(2, 8, 4, 6), torch.randn(2, 12, 2, 3)]


def test_logits_are_ln_gap_linear() -> None:
    head = VMambaClassifierHead(INFO, 5)
    with torch.no_grad():
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.uniform_(-0.5, 0.5)
        head.fc.bias.uniform_(-1, 1)
    feats = _features()
    tokens = feats[1].permute(0, 2, 3, 1)  # (B, h, w, C)
    mu, var = tokens.mean(-1, keepdim=True), tokens.var(-1, unbiased=False, keepdim=True)
    normed = (tokens - mu) / torch.sqrt(var + 1e-5) * head.norm.weight + head.norm.bias
    expected = normed.mean(dim=(1, 2)) @ head.fc.weight.T + head.fc.bias
    out = head(feats)
    assert out.logits.shape == (2, 5) and out.maps == {}
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-5)


def test_class_maps_average_to_logits() -> None:
    head = VMambaClassifierHead(INFO, 3, level=0)
    feats = _features()
    maps = head.class_maps(feats)
    assert maps.shape == (2, 3, 4, 6)
    torch.testing.assert_close(maps.mean(dim=(2, 3)) + head.fc.bias, head(feats).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"level": 2}, "head.level"), ({"level": True}, "head.level"), ({"dropout": 1.0}, "head.dropout"),
    ({"num_classes": 0}, "num_classes"),
])
def test_errors(kwargs: dict, message: str) -> None:
    params = {"num_classes": 3, **kwargs}
    with pytest.raises(SpecError, match=message):
        VMambaClassifierHead(INFO, **params)


def test_in_a_medcam_model() -> None:
    model = medcam.build_model({"backbone": {"name": "vmamba", "depths": [1, 1, 1, 1], "dims": 16},
                                "head": {"name": "vmamba_classifier", "dropout": 0.1}, "num_classes": 4,
                                "in_chans": 1})
    assert model.spec["head"] == {"name": "vmamba_classifier", "level": None, "dropout": 0.1,
                                  "checkpoint_path": None}
    out = model(torch.rand(2, 1, 64, 64))
    assert out.logits.shape == (2, 4)
    out.logits.sum().backward()
    assert model.head.fc.weight.grad is not None
