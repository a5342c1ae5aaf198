"""Segmenter masks -> components -> boxes, union box and regions (on medcam.boxes), batched."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import medcam
from medcam.errors import ShapeError
from medcam.registry import segmenters
from medcam_seg.postprocess import mask_boxes, predict_boxes, remove_small_components


def _batch() -> torch.Tensor:
    m = torch.zeros(3, 12, 16, dtype=torch.bool)
    m[0, 1:4, 2:6] = True       # 12 px, box (2, 1, 6, 4)
    m[0, 4, 6] = True           # touches the first diagonally: same component under 8-connectivity
    m[0, 8:10, 10:15] = True    # 10 px, box (10, 8, 15, 10)
    m[2, 5, 5] = True           # a single pixel, box (5, 5, 6, 6)
    return m                    # image 1 is empty


def test_components_boxes_areas_and_union():
    r = mask_boxes(_batch())
    assert r.counts.tolist() == [2, 0, 1] and r.has_foreground.tolist() == [True, False, True]
    boxes0 = sorted(r.boxes[0].tolist())
    assert boxes0 == [[2.0, 1.0, 7.0, 5.0], [10.0, 8.0, 15.0, 10.0]]
    assert sorted(r.areas[0].tolist()) == [10, 13] and r.areas[1].numel() == 0 and r.areas[2].tolist() == [1]
    assert r.union.tolist() == [[2, 1, 15, 10], [0, 0, 16, 12], [5, 5, 6, 6]]  # empty -> whole image
    assert r.largest().tolist() == [[2, 1, 7, 5], [0, 0, 0, 0], [5, 5, 6, 6]]
    four = mask_boxes(_batch(), connectivity=4, empty="zero")
    assert four.counts.tolist() == [3, 0, 1] and four.union[1].tolist() == [0, 0, 0, 0]


def test_min_area_and_regions():
    r = mask_boxes(_batch(), min_area=11)
    assert r.counts.tolist() == [1, 0, 0] and r.boxes[0].tolist() == [[2, 1, 7, 5]]
    assert r.union[0].tolist() == [2, 1, 7, 5]
    upper, lower, outside = r.region("upper"), r.region("lower"), r.region("outside")
    assert upper.shape == (3, 12, 16)
    assert upper[0].nonzero()[:, 0].unique().tolist() == [1, 2]   # rows [1, 3) of the box rows [1, 5)
    assert lower[0].nonzero()[:, 0].unique().tolist() == [3, 4]
    assert int(upper[0].sum() + lower[0].sum()) == 20 and int(outside[0].sum()) == 12 * 16 - 20
    per_image = r.region(["inside", "image", "outside"])
    assert int(per_image[1].sum()) == 12 * 16
    assert torch.equal(remove_small_components(_batch(), 2)[2], torch.zeros(12, 16, dtype=torch.bool))


def test_bad_input():
    with pytest.raises(ShapeError, match=r"masks must be \(B, H, W\).*masks\[:, k\]"):
        mask_boxes(torch.zeros(2, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"min_area"):
        mask_boxes(torch.zeros(2, 8, 8), min_area=-1)


class _Brightness(nn.Module):
    """Logits 100 * (normalized image - 0): with mean 0.5 / std 1, foreground is pixel > 0.5."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        first = 100 * x[:, :1]
        return torch.cat([first, -first][: self.num_classes], dim=1)


def seg_test_brightness(in_chans: int, num_classes: int):
    return _Brightness(num_classes)


@pytest.fixture
def brightness_segmenter():
    segmenters.register(seg_test_brightness, name="seg_test_brightness")
    yield
    segmenters.unregister("seg_test_brightness")


@pytest.mark.usefixtures("brightness_segmenter")
def test_predict_boxes_runs_the_segmenter_on_a_batch():
    seg = medcam.build_segmenter({"name": "seg_test_brightness", "in_chans": 1, "num_classes": 2,
                                  "preprocess": {"mean": 0.5, "std": 1.0}})
    images = torch.zeros(2, 1, 20, 24)
    images[0, 0, 2:6, 3:9] = 1.0
    images[0, 0, 10:12, 15:20] = 0.9
    images[1, 0, 14:18, 0:4] = 0.8
    r = predict_boxes(seg, images)
    assert sorted(r.boxes[0].tolist()) == [[3, 2, 9, 6], [15, 10, 20, 12]] and r.boxes[1].tolist() == [[0, 14, 4, 18]]
    assert r.union.tolist() == [[3, 2, 20, 12], [0, 14, 4, 18]]
    background = predict_boxes(seg, images, class_index=1)  # class 1 is the complement
    assert background.union.tolist() == [[0, 0, 24, 20], [0, 0, 24, 20]]
    with pytest.raises(ValueError, match=r"class_index 2 out of range for 2"):
        predict_boxes(seg, images, class_index=2)
