"""A small real conv net (tiny_cnn) with identity normalization, so that image space and the
model's input space coincide (what pytorch-grad-cam and Quantus perturb), and a logits view of it."""
from __future__ import annotations

import pytest
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


@pytest.fixture
def model() -> medcam.MedcamModel:
    return tiny_model()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Images (3, 3, 32, 32), distinct-valued maps (3, 32, 32) in [0, 1], targets."""
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(3, 3, 32, 32, generator=gen)
    images[:, :, 0, 0] = 0.0          # every image holds a black pixel (Quantus's "black" is the image minimum)
    maps = torch.rand(3, 32, 32, generator=gen)
    maps = (maps - maps.amin((1, 2), keepdim=True)) / (maps.amax((1, 2), keepdim=True) - maps.amin((1, 2), keepdim=True))
    return images, maps, [0, 2, 1]


@pytest.fixture
def grad_cam_road(monkeypatch):
    """pytorch-grad-cam's ROAD module with its imputer's noise set to 0 (its default draws 0.01 * N(0, 1)
    from torch's global RNG, which cannot be reproduced draw for draw)."""
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics import road

    monkeypatch.setattr(road.NoisyLinearImputer.__init__, "__defaults__", (0.0, road.neighbors_weights))
    return road
