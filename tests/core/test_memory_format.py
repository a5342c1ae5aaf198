"""Channels-last input for CNN backbones (medcam.memory_format)."""
from __future__ import annotations

import torch

import medcam
from medcam.memory_format import backbone_input, prefers_channels_last


def _cnn() -> medcam.MedcamModel:
    torch.manual_seed(0)
    return medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 8}, "num_classes": 3}).eval()


def test_only_map_layout_backbones_on_the_cpu_get_channels_last():
    images = torch.rand(2, 3, 16, 16)
    assert prefers_channels_last(_cnn(), images)
    assert not prefers_channels_last(torch.nn.Conv2d(3, 3, 1), images)  # no spec: unknown backbone
    token_model = type("TokenModel", (torch.nn.Module,), {})()
    token_model.spec = {"backbone": {"name": "vmamba_tiny"}}
    assert not prefers_channels_last(token_model, images)
    assert not prefers_channels_last(_cnn(), images[0])  # not a batch


def test_backbone_input_is_a_channels_last_copy_with_the_same_values():
    images = torch.rand(2, 3, 16, 16)
    moved = backbone_input(_cnn(), images)
    assert moved.is_contiguous(memory_format=torch.channels_last) and not moved.is_contiguous()
    assert torch.equal(moved, images)
    plain = torch.nn.Conv2d(3, 3, 1)
    assert backbone_input(plain, images) is images


def test_gradcam_with_channels_last_equals_the_channels_first_maps():
    model = _cnn()
    images = torch.rand(2, 3, 32, 32)
    got = medcam.explain(model, images, "gradcam", raw=True)
    with torch.no_grad():
        features = model.forward_features(images)
    acts = features[model.feature_info.cam_level].detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.head(features[:-1] + [acts]).logits
        (grad,) = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), acts)
    expected = torch.relu((grad.mean((2, 3), keepdim=True) * acts).sum(1))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
