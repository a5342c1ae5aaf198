"""Hand-computable probe models for the CAM methods.

``cam_probe`` backbone: one level whose activations are known in closed form,
``A = AvgPool_p(scale * x - shift)`` (the model's normalization is the
identity: mean 0, std 1). ``cam_probe_flat`` head: ``y_c = sum_kij V[c,k,i,j]
A[k,i,j] + b_c``, so ``dy_c / dA = V[c]`` exactly. ``cam_probe_fpm`` head: a
1x1 convolution whose sigmoid is an FPM ``(B, K, h, w)``. ``conftest.py``
registers them (``Registry.register``) around each test module.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import medcam
from medcam.features import FeatureInfo, FeatureLevel
from medcam.model import ModelOutput


class ProbeBackbone(nn.Module):
    def __init__(self, in_chans: int, scale: float, shift: float, pool: int):
        super().__init__()
        self.scale, self.shift = scale, shift
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()
        self.feature_info = FeatureInfo([FeatureLevel(in_chans, pool, "pool")])

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.pool(x * self.scale - self.shift)]


class FlatHead(nn.Module):
    def __init__(self, feature_info: FeatureInfo, num_classes: int, height: int, width: int):
        super().__init__()
        channels = feature_info[-1].channels
        self.weight = nn.Parameter(torch.randn(num_classes, channels, height, width))
        self.bias = nn.Parameter(torch.randn(num_classes))

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        return ModelOutput(logits=torch.einsum("kchw,bchw->bk", self.weight, features[-1]) + self.bias)


class QuadraticHead(FlatHead):
    """``y_c = <V_c, A> + 1/2 <A, Q_c * A> + b_c``: ``dy_c/dA = V_c + Q_c * A`` and the Hessian is ``diag(Q_c)``."""

    def __init__(self, feature_info: FeatureInfo, num_classes: int, height: int, width: int):
        super().__init__(feature_info, num_classes, height, width)
        self.quad = nn.Parameter(torch.randn_like(self.weight))

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        a = features[-1]
        linear = torch.einsum("kchw,bchw->bk", self.weight, a)
        quadratic = 0.5 * torch.einsum("kchw,bchw->bk", self.quad, a * a)
        return ModelOutput(logits=linear + quadratic + self.bias)


class FPMHead(nn.Module):
    def __init__(self, feature_info: FeatureInfo, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(feature_info[-1].channels, num_classes, 1)

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        maps = self.conv(features[-1])
        return ModelOutput(logits=maps.mean(dim=(2, 3)), maps={"fpm": torch.sigmoid(maps)})


def cam_probe(in_chans: int = 3, scale: float = 1.0, shift: float = 0.0, pool: int = 1) -> nn.Module:
    return ProbeBackbone(in_chans, scale, shift, pool)


def cam_probe_flat(feature_info: Any, num_classes: int, height: int = 4, width: int = 4) -> nn.Module:
    return FlatHead(feature_info, num_classes, height, width)


def cam_probe_quadratic(feature_info: Any, num_classes: int, height: int = 4, width: int = 4) -> nn.Module:
    return QuadraticHead(feature_info, num_classes, height, width)


def cam_probe_fpm(feature_info: Any, num_classes: int) -> nn.Module:
    return FPMHead(feature_info, num_classes)


def build_probe(*, channels: int = 3, classes: int = 3, size: int = 4, pool: int = 1, scale: float = 1.0,
                shift: float = 0.0, head: str = "flat", multilabel: bool = False) -> medcam.MedcamModel:
    """A probe model for ``(B, channels, size, size)`` inputs, in eval mode.

    ``head``: ``"flat"`` (spatially varying gradients ``V``), ``"quadratic"`` (gradients
    ``V + Q * A``, Hessian ``diag(Q)``), ``"linear"`` (the basic plugin's GAP + linear head,
    CAM-compatible) or ``"fpm"``.
    """
    h = size // pool
    head_spec: Any = {"flat": {"name": "cam_probe_flat", "height": h, "width": h}, "fpm": "cam_probe_fpm",
                      "quadratic": {"name": "cam_probe_quadratic", "height": h, "width": h},
                      "linear": "linear"}[head]
    spec = {"backbone": {"name": "cam_probe", "scale": scale, "shift": shift, "pool": pool},
            "head": head_spec, "num_classes": classes, "in_chans": channels, "multilabel": multilabel,
            "preprocess": {"size": [size, size], "mean": [0.0] * channels, "std": [1.0] * channels}}
    return medcam.build_model(spec).eval()


class LogitsView(nn.Module):
    """The plain ``nn.Module`` view of a MedcamModel that the peers (pytorch-grad-cam, Captum) drive:
    images -> ``(B, K)`` logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).logits


def tiny_cnn_model(width: int = 8, classes: int = 3, **spec: Any) -> medcam.MedcamModel:
    """The basic plugin's tiny_cnn + linear head (a real conv net), eval mode."""
    return medcam.build_model({"backbone": {"name": "tiny_cnn", "width": width}, "num_classes": classes,
                               "preprocess": {"size": [64, 64]}, **spec}).eval()
