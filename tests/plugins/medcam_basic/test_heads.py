"""LinearHead: GAP + linear, and its CAM weights."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel
from medcam_basic.heads import LinearHead


def test_logits_equal_linear_of_pooled_level_and_cam_identity():
    info = FeatureInfo([FeatureLevel(4, 4), FeatureLevel(6, 8)])
    head = LinearHead(info, num_classes=3)
    feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)]
    out = head(feats)
    expected = feats[1].mean((2, 3)) @ head.fc.weight.T + head.fc.bias
    assert torch.allclose(out.logits, expected)
    cam = torch.einsum("kc,bchw->bkhw", head.cam_weights(), feats[1])
    assert torch.allclose(cam.mean((2, 3)) + head.fc.bias, out.logits, atol=1e-6)  # Zhou et al. 2016


def test_level_choice_and_errors():
    info = FeatureInfo([FeatureLevel(4, 4), FeatureLevel(6, 8)])
    assert LinearHead(info, 2, level=0).fc.in_features == 4
    with pytest.raises(SpecError, match="head.level: 2 is out of range"):
        LinearHead(info, 2, level=2)
    with pytest.raises(SpecError, match=r"head\.dropout: expected a number in \[0, 1\), got 1\.5"):
        medcam.build_head({"name": "linear", "dropout": 1.5}, feature_info=info, num_classes=2)
