"""Fixtures of the faithfulness tests (helpers in :mod:`faithfulness_probes`)."""
from __future__ import annotations

import pytest
import torch

from faithfulness_probes import tiny_model


@pytest.fixture
def model() -> torch.nn.Module:
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
