"""Map -> boxes and box drawing (medcam/viz/draw.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.errors import ShapeError
from medcam.viz.draw import draw_boxes, map_boxes


def test_map_boxes_all_components_and_largest():
    heat = torch.zeros(10, 12)
    heat[1:3, 1:4] = 0.9        # 2 x 3 blob
    heat[5:9, 6:11] = 0.8       # 4 x 5 blob
    heat[0, 11] = 0.4           # below the threshold
    boxes = map_boxes(heat, 0.5)
    assert sorted(boxes.tolist()) == [[1.0, 1.0, 4.0, 3.0], [6.0, 5.0, 11.0, 9.0]]
    assert map_boxes(heat, 0.5, mode="largest").tolist() == [[6.0, 5.0, 11.0, 9.0]]
    assert map_boxes(heat[None], 0.85).tolist() == [[1.0, 1.0, 4.0, 3.0]]
    assert map_boxes(heat, 0.95).shape == (0, 4)
    with pytest.raises(ShapeError, match="medcam.boxes.map_to_boxes"):
        map_boxes(torch.rand(2, 4, 4), 0.5)


def test_draw_boxes_outlines_the_exclusive_box():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    out = draw_boxes(image, torch.tensor([[2.0, 3.0, 6.0, 8.0]]), color=(0, 255, 0), width=1)
    green = (out == [0, 255, 0]).all(axis=2)
    ys, xs = np.nonzero(green)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2, 5, 3, 7)   # x1=6, y1=8 exclusive
    assert not green[5, 3]                                           # inside stays untouched
    assert image.sum() == 0                                          # input not modified
    assert np.array_equal(draw_boxes(image, []), image)
    with pytest.raises(ShapeError, match="2 labels for 1 boxes"):
        draw_boxes(image, [[0, 0, 2, 2]], labels=["a", "b"])
