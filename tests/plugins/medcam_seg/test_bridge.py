"""EncoderBridge: any registered backbone as a segmentation encoder, checked against its feature_info."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from medcam.errors import ShapeError, SpecError, UnknownNameError
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones
from medcam_seg.bridge import EncoderBridge, check_length, doubling


class _LyingNet(nn.Module):
    """Declares stride 4 but returns a stride-2 map."""

    def __init__(self, in_chans: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.feature_info = FeatureInfo([FeatureLevel(8, 4, "conv")])

    def forward(self, x):
        return [self.conv(x)]


def lying_net(in_chans: int = 3):
    return _LyingNet(in_chans)


@pytest.fixture
def lying_backbone():
    backbones.register(lying_net, name="seg_test_lying_net")
    yield "seg_test_lying_net"
    backbones.unregister("seg_test_lying_net")


def test_bridge_reads_feature_info_and_returns_levels():
    bridge = EncoderBridge({"name": "tiny_cnn", "width": 8}, in_chans=1)
    assert bridge.channels == [8, 16, 32, 64] and bridge.strides == [4, 8, 16, 32] and bridge.max_stride == 32
    assert bridge.spec["name"] == "tiny_cnn" and bridge.spec["width"] == 8 and bridge.name == "tiny_cnn"
    feats = bridge(torch.rand(2, 1, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 24), (2, 16, 8, 12), (2, 32, 4, 6), (2, 64, 2, 3)]


def test_bridge_errors_carry_the_spec_path():
    with pytest.raises(SpecError, match=r"^segmenter\.encoder\.widht: unknown parameter; did you mean 'width'\?"):
        EncoderBridge({"name": "tiny_cnn", "widht": 8}, in_chans=3)
    with pytest.raises(UnknownNameError, match=r"segmenter\.encoder\.name: unknown backbone 'tiny_cn'; did you mean"):
        EncoderBridge("tiny_cn", in_chans=3)
    with pytest.raises(SpecError, match=r"segmenter\.encoder\.in_chans: set by medcam"):
        EncoderBridge({"name": "tiny_cnn", "in_chans": 1}, in_chans=3)
    with pytest.raises(SpecError, match=r"^my\.path: expected a backbone name or a mapping"):
        EncoderBridge(42, in_chans=3, path="my.path")


def test_bridge_rejects_a_backbone_that_contradicts_its_feature_info(lying_backbone):
    bridge = EncoderBridge(lying_backbone, in_chans=3)
    with pytest.raises(ShapeError, match=r"level 0: got shape \(1, 8, 16, 16\).*stride 4"):
        bridge(torch.rand(1, 3, 32, 32))


def test_doubling_and_check_length():
    assert doubling([2, 4, 8, 16, 32]) and doubling([4, 8]) and doubling([32])
    assert not doubling([4, 16, 32]) and not doubling([4, 8, 8])
    check_length(None, 3, "p", "x")
    check_length([1, 2, 3], 3, "p", "x")
    for bad in ([1, 2], [1, 2, 0], [1, 2, True], "abc"):
        with pytest.raises(SpecError, match=r"^p: expected 3 positive integers"):
            check_length(bad, 3, "p", "x")
