"""Pointing game and energy-based pointing game: does the map point at the ground-truth region?

* Pointing game (Zhang et al., "Top-down Neural Attention by Excitation
  Backprop", ECCV 2016 / IJCV 2018, sec. 5.1): a hit when the map's maximum lies
  on the region, within ``tolerance`` pixels (the paper: 15 px); the score is
  ``100 * hit`` per image (the hit rate in % over images). Every position that
  attains the maximum counts (as Quantus's ``PointingGame``), but a constant
  map points nowhere and misses (Quantus counts it as a hit).
* Energy-based pointing game (Wang et al., "Score-CAM", CVPR Workshops 2020,
  sec. 5.2, eq. 6): the share of the map's energy inside the region,
  ``100 * sum_{p in R} L_p / sum_p L_p`` (maps must be non-negative; a map with
  no energy scores 0). With lesion masks instead of boxes this is Quantus's
  ``RelevanceMassAccuracy``.

An empty region scores NaN (there is nothing to point at); summaries skip it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import AttributionMetric, MetricInputs, MetricResult

__all__ = ["PointingGame", "EnergyPointingGame", "dilate"]


def dilate(regions: Tensor, radius: float) -> Tensor:
    """``(B, H, W)`` bool: pixels within Euclidean distance ``radius`` of a region pixel."""
    r = int(math.floor(radius))
    if r <= 0:
        return regions
    y, x = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((y * y + x * x) <= radius * radius).float().to(regions.device)
    hit = F.conv2d(regions.float()[:, None], disk[None, None], padding=r)[:, 0]
    return hit > 0.5


class PointingGame(AttributionMetric):
    """Pointing game (Zhang et al., ECCV 2016): ``100 * 1[argmax L within tolerance of R]`` per image.

    Args:
        tolerance: pixels around the region that still count as a hit (the paper's 15 px; 0 = Quantus).
    """

    needs = frozenset({"maps", "regions"})
    unit = "%"

    def __init__(self, tolerance: float = 15.0):
        if tolerance < 0:
            raise ValueError(f"pointing_game.tolerance must be >= 0, got {tolerance!r}")
        self.tolerance = float(tolerance)

    def compute(self, inputs: MetricInputs) -> MetricResult:
        maps, regions = inputs.maps, inputs.regions
        assert maps is not None and regions is not None
        flat = maps.flatten(1)
        peak = flat.amax(dim=1, keepdim=True)
        peaks = (flat == peak) & (peak > flat.amin(dim=1, keepdim=True))   # a constant map has no peak
        target = dilate(regions, self.tolerance).flatten(1)
        hit = (peaks & target).any(dim=1).float() * 100.0
        hit[~regions.flatten(1).any(dim=1)] = float("nan")
        return MetricResult({"pointing_game": hit})


class EnergyPointingGame(AttributionMetric):
    """Energy-based pointing game (Wang et al., Score-CAM, CVPR Workshops 2020, eq. 6):
    ``100 * sum_{p in R} L_p / sum_p L_p`` per image; the maps must be non-negative."""

    needs = frozenset({"maps", "regions"})
    unit = "%"

    def compute(self, inputs: MetricInputs) -> MetricResult:
        maps, regions = inputs.maps, inputs.regions
        assert maps is not None and regions is not None
        if float(maps.min()) < 0:
            raise ValueError("energy_pointing_game needs non-negative maps (energies); min-max normalize them, "
                             "as explain() does")
        flat = maps.flatten(1).double()
        inside = (flat * regions.flatten(1)).sum(dim=1)
        total = flat.sum(dim=1)
        share = torch.where(total > 0, inside / total.clamp_min(1e-300), torch.zeros_like(total)) * 100.0
        share[~regions.flatten(1).any(dim=1)] = float("nan")
        return MetricResult({"energy_pointing_game": share})
