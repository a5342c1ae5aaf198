"""Side-by-side figures (medcam/viz/figures.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medcam.errors import ShapeError
from medcam.viz.figures import figure_to_array, side_by_side


def test_side_by_side_panels_titles_boxes_and_png(tmp_path):
    image = torch.rand(3, 32, 32)
    maps = {"gradcam": torch.rand(32, 32), "scorecam": torch.rand(8, 8)}
    figure = side_by_side(image, maps, boxes={"gradcam": [[2, 2, 10, 10]], "scorecam": []},
                          gt_boxes=torch.tensor([[4.0, 4.0, 20.0, 20.0]]), suptitle="benign", panel_size=2.0,
                          path=tmp_path / "figure.png")
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["input", "gradcam", "scorecam"]
    assert len(axes[0].patches) == 1 and len(axes[1].patches) == 2 and len(axes[2].patches) == 1
    pixels = figure_to_array(figure)
    assert pixels.shape == (int(2.4 * 100), 600, 3) and pixels.dtype == np.uint8
    with Image.open(tmp_path / "figure.png") as saved:
        assert saved.size == (600, 240)


def test_side_by_side_with_a_tensor_of_maps_and_errors():
    image = torch.rand(1, 16, 16)
    figure = side_by_side(image, torch.rand(3, 16, 16), titles=["a", "b", "c"])
    assert [ax.get_title() for ax in figure.axes] == ["input", "a", "b", "c"]
    with pytest.raises(ShapeError, match="2 titles for 3 maps"):
        side_by_side(image, torch.rand(3, 16, 16), titles=["a", "b"])
    with pytest.raises(ShapeError, match="1 box sets for 2 maps"):
        side_by_side(image, [torch.rand(16, 16), torch.rand(16, 16)], boxes=[[]])
