"""``cam`` on heads that compute their class maps themselves (ClassMapHead): FPM and VMamba's classifier."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.capabilities import CamWeightsHead, ClassMapHead
from medcam.errors import CapabilityError
from cam_probes import build_probe


def _fpm_model() -> medcam.MedcamModel:
    torch.manual_seed(0)
    spec = {"backbone": {"name": "tiny_cnn", "width": 4}, "head": {"name": "fpm", "hidden": 8,
                                                                   "class_activation": "softplus"},
            "num_classes": 3, "preprocess": {"size": [64, 64]}}
    return medcam.build_model(spec).eval()


def _vmamba_model() -> medcam.MedcamModel:
    torch.manual_seed(0)
    spec = {"backbone": {"name": "vmamba", "depths": [1, 1, 1, 1], "dims": 8, "kernel_backend": "torch"},
            "head": "vmamba_classifier", "num_classes": 3, "preprocess": {"size": [64, 64]}}
    return medcam.build_model(spec).eval()


def test_fpm_head_class_maps_through_cam_average_to_its_logits():
    """FPM's logits are GAP(A) (Wang et al. 2024): cam returns A[c], whose mean is the logit of c."""
    model = _fpm_model()
    assert isinstance(model.head, ClassMapHead) and not isinstance(model.head, CamWeightsHead)
    images = torch.rand(2, 3, 64, 64)
    targets = [2, 0]
    maps = medcam.explain(model, images, "cam", target=targets, raw=True)          # (B, h, w)
    with torch.no_grad():
        logits = model(images).logits
    assert maps.shape == (2, 2, 2)  # tiny_cnn's last level: stride 32
    torch.testing.assert_close(maps.mean(dim=(1, 2)), logits[torch.arange(2), targets], rtol=1e-5, atol=1e-6)


def test_vmamba_head_class_maps_through_cam_average_to_its_logits_minus_bias():
    """VMamba's classifier is LN -> GAP -> linear, so mean_hw(W . LN(F))[c] + b[c] is the logit of c."""
    model = _vmamba_model()
    assert isinstance(model.head, ClassMapHead)
    images = torch.rand(2, 3, 64, 64)
    targets = [1, 2]
    maps = medcam.explain(model, images, "cam", target=targets, raw=True)
    with torch.no_grad():
        logits = model(images).logits
        features = model(images, return_features=True).features
        normed = F.layer_norm(features[-1].permute(0, 2, 3, 1), (features[-1].shape[1],),
                              model.head.norm.weight, model.head.norm.bias, model.head.norm.eps)
        reference = torch.einsum("bhwc,kc->bkhw", normed, model.head.fc.weight)   # independent of class_maps()
    bias = model.head.fc.bias.detach()[targets]
    torch.testing.assert_close(maps, reference[torch.arange(2), targets], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(maps.mean(dim=(1, 2)) + bias, logits[torch.arange(2), targets], rtol=1e-4,
                               atol=1e-5)


def test_a_spec_asking_cam_of_a_head_without_class_maps_fails_at_assembly():
    spec = {"backbone": {"name": "cam_probe"}, "head": {"name": "cam_probe_flat", "height": 4, "width": 4},
            "num_classes": 3, "attribution": "cam", "preprocess": {"size": [4, 4]}}
    with pytest.raises(CapabilityError, match=r"attribution \(cam\): cam needs a head .*cam_weights\(\).*"
                                              r"class_maps\(\)"):
        medcam.build_model(spec)
    assert medcam.build_model({**spec, "attribution": "gradcam"}) is not None
    assert build_probe(head="linear") is not None
