"""Helpers of the faithfulness tests: a small real conv net (tiny_cnn) with identity normalization,
so that image space and the model's input space coincide (what pytorch-grad-cam and Quantus perturb),
and the plain logits view of it that the peers drive."""
from __future__ import annotations

import torch
from torch import nn

import medcam


class LogitsView(nn.Module):
    """The plain module the peers drive: images -> (B, K) logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def tiny_model(size: int = 32, classes: int = 3, seed: int = 0, channels: int = 3) -> medcam.MedcamModel:
    """tiny_cnn (width 8) whose batch norms saw 16 random images (so the features are not all zero)."""
    torch.manual_seed(seed)
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 8}, "num_classes": classes,
                                "in_chans": channels, "preprocess": {"size": [size, size], "mean": [0.0] * channels,
                                                                     "std": [1.0] * channels}})
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: the statistics of the warm-up batch
    model.train()
    with torch.no_grad():
        model(torch.rand(16, channels, size, size, generator=torch.Generator().manual_seed(seed + 1)))
    return model.eval()
