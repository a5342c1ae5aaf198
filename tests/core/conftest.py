"""Test-only parts registered in the global registries for the duration of a test."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones, segmenters


class _TwoLevelNet(nn.Module):
    """Two conv levels at strides 2 and 4: a minimal backbone obeying the contract."""

    def __init__(self, in_chans: int, width: int):
        super().__init__()
        self.a = nn.Conv2d(in_chans, width, 3, stride=2, padding=1)
        self.b = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.feature_info = FeatureInfo([FeatureLevel(width, 2, "a"), FeatureLevel(2 * width, 4, "b")])

    def forward(self, x):
        a = torch.relu(self.a(x))
        return [a, torch.relu(self.b(a))]


def spec_test_net(in_chans: int = 3, pretrained: bool = False, width: int = 4, dropout: float = 0.0):
    """A test backbone with the usual parameter names (pretrained is accepted and ignored)."""
    return _TwoLevelNet(in_chans, width)


def spec_test_seg(in_chans: int, num_classes: int, width: int = 4):
    """A test segmenter: one 3x3 conv to mask logits at input resolution."""
    return nn.Conv2d(in_chans, num_classes, 3, padding=1)


@pytest.fixture
def registered_test_parts():
    backbones.register(spec_test_net, name="spec_test_net")
    segmenters.register(spec_test_seg, name="spec_test_seg")
    yield
    backbones.unregister("spec_test_net")
    segmenters.unregister("spec_test_seg")
