"""medcam.data.geometry: the reduction on load and the picture grid compose with the resize geometry."""
from __future__ import annotations

import pytest
import torch

from medcam.data.geometry import Geometry


def test_after_reduction_maps_original_pixels_through_the_reduced_image():
    # a 100 x 60 original reduced 4 times (25 x 15), then resized to 50 x 30: a point moves x -> x / 4 * 2
    reduced = Geometry((25, 15), (50, 30), (2.0, 2.0))
    full = reduced.after_reduction(4, (100, 60))
    assert full.original_size == (100, 60) and full.scale == (0.5, 0.5)
    box = torch.tensor([[8.0, 20.0, 40.0, 60.0]])
    torch.testing.assert_close(full.boxes_to_output(box), box / 2)
    torch.testing.assert_close(full.boxes_to_original(box / 2), box)


def test_on_grid_maps_onto_the_original_reduced():
    geometry = Geometry((90, 150), (30, 50), (1 / 3, 1 / 3))
    grid = geometry.on_grid(5)
    assert grid.original_size == (18, 30) and grid.scale == pytest.approx((5 / 3, 5 / 3))
    maps = torch.arange(30 * 50, dtype=torch.float32).view(1, 30, 50)
    coarse = grid.map_to_original(maps)[0]
    fine = geometry.map_to_original(maps)[0]
    # every picture pixel is the model-input value at the centre of its 5 x 5 block of original pixels
    torch.testing.assert_close(coarse, fine[2::5, 2::5])
