"""Attention residual U-Net: block structure, the gate equation, shapes and errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import medcam
from medcam.errors import ShapeError, SpecError
from medcam_seg.attention_resunet import AttentionGate, AttentionResUNet, ResidualUnit


def test_gate_matches_the_additive_attention_equation():
    gate = AttentionGate(skip_channels=6, gate_channels=10, inter_channels=4)
    x, g = torch.randn(2, 6, 8, 12), torch.randn(2, 10, 4, 6)
    # Oktay et al. Eq. 1-2 written out with einsum on the gate's own weights
    xs = F.unfold(x, kernel_size=2, stride=2)                                  # (B, 6*2*2, 4*6)
    wx = torch.einsum("ok,bkn->bon", gate.w_x.weight.reshape(4, -1), xs).reshape(2, 4, 4, 6)
    wg = torch.einsum("oc,bchw->bohw", gate.w_g.weight[:, :, 0, 0], g) + gate.w_g.bias.view(1, 4, 1, 1)
    q = torch.einsum("oc,bchw->bohw", gate.psi.weight[:, :, 0, 0], torch.relu(wx + wg)) + gate.psi.bias.view(1, 1, 1, 1)
    alpha = F.interpolate(torch.sigmoid(q), size=(8, 12), mode="bilinear", align_corners=False)
    out = gate(x, g)
    assert torch.allclose(out, x * alpha, atol=1e-5)
    assert gate.last_alpha.shape == (2, 1, 8, 12) and (gate.last_alpha > 0).all() and (gate.last_alpha < 1).all()


def test_residual_unit_shortcuts():
    same = ResidualUnit(8, 8)
    assert isinstance(same.shortcut, nn.Identity) and isinstance(same.body[0], nn.BatchNorm2d)
    down = ResidualUnit(8, 16, stride=2)
    assert down.shortcut[0].stride == (2, 2) and down(torch.rand(1, 8, 16, 16)).shape == (1, 16, 8, 8)
    first = ResidualUnit(3, 8, first=True)
    assert isinstance(first.body[0], nn.Conv2d)  # no BN-ReLU on the image
    # zeroing the residual branch leaves exactly the shortcut
    nn.init.zeros_(same.body[-1].weight)
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(same(x), x)


@pytest.mark.parametrize("in_chans, num_classes", [(1, 1), (3, 2)])
def test_shapes_backward_and_attention_maps(in_chans, num_classes):
    net = AttentionResUNet(in_chans=in_chans, num_classes=num_classes, base_channels=8, depth=3)
    assert net.channels == [8, 16, 32, 64]
    logits = net(torch.rand(2, in_chans, 32, 48))
    assert logits.shape == (2, num_classes, 32, 48)
    logits.mean().backward()
    assert all(g.w_x.weight.grad is not None and g.w_x.weight.grad.abs().sum() > 0 for g in net.gates)
    maps = net.attention_maps()
    assert [tuple(m.shape) for m in maps] == [(2, 1, 32, 48), (2, 1, 16, 24), (2, 1, 8, 12)]


def test_built_through_the_registry_with_errors():
    seg = medcam.build_segmenter({"name": "attention_resunet", "base_channels": 4, "depth": 2, "in_chans": 1})
    assert seg(torch.rand(1, 1, 16, 16)).shape == (1, 1, 16, 16)
    with pytest.raises(ShapeError, match=r"divisible by 4, got \(18, 16\); resize or pad to \(20, 16\)"):
        seg(torch.rand(1, 1, 18, 16))
    with pytest.raises(SpecError, match=r"segmenter\.depth: expected an integer in \[1, 6\], got 0"):
        medcam.build_segmenter({"name": "attention_resunet", "depth": 0})
    with pytest.raises(SpecError, match=r"segmenter\.base_chanels: unknown parameter; did you mean 'base_channels'"):
        medcam.build_segmenter({"name": "attention_resunet", "base_chanels": 4})
