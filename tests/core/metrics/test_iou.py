"""Box IoU and IoBB: hand-computed values, both conventions, and torchvision for the exclusive one."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from medcam.errors import ShapeError
from medcam.metrics import best_box_overlap, box_area, box_iobb, box_iou


def test_iou_by_hand_in_both_conventions():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
    assert box_iou(a, b).tolist() == [[pytest.approx(1 / 7), 0.0]]
    assert box_iou(a, b, convention="wsol").tolist() == [[pytest.approx(4 / 14), 0.0]]  # 3x3 boxes, 2x2 overlap
    assert box_area(b).tolist() == [4.0, 1.0] and box_area(b, convention="wsol").tolist() == [9.0, 4.0]


def test_iou_equals_torchvision():
    g = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 50, (30, 2), generator=g).float()
    wh = torch.randint(1, 30, (30, 2), generator=g).float()
    boxes = torch.cat([xy, xy + wh], 1)
    torch.testing.assert_close(box_iou(boxes[:12], boxes[12:]), tv_box_iou(boxes[:12], boxes[12:]))


def test_iobb_by_hand():
    pred = torch.tensor([[0, 0, 4, 4], [1, 1, 2, 2], [3, 3, 3, 5]])
    gt = torch.tensor([[0, 0, 2, 2]])
    # 4 of 16, all of a 1-pixel box, and a box with no area
    assert box_iobb(pred, gt).tolist() == [[0.25], [1.0], [0.0]]
    # inclusive: (0..4)^2 = 25 pixels, 9 of them in (0..2)^2
    assert box_iobb(pred[:1], gt, convention="wsol").tolist() == [[9 / 25]]


def test_degenerate_union_is_zero():
    z = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    assert box_iou(z, z).tolist() == [[0.0]]
    assert box_iou(z, z, convention="wsol").tolist() == [[1.0]]  # one inclusive pixel


def test_best_match_over_several_boxes():
    pred = [torch.tensor([[0, 0, 2, 2], [10, 10, 12, 12]]), torch.zeros(0, 4), torch.tensor([[0, 0, 4, 4]])]
    gt = [torch.tensor([[9, 10, 12, 12], [0, 0, 8, 8]]), torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 2, 2]])]
    out = best_box_overlap(pred, gt)
    assert out.tolist() == [pytest.approx(4 / 6), 0.0, 0.25]
    assert best_box_overlap(pred, gt, criterion="iobb").tolist() == [1.0, 0.0, 0.25]


def test_bad_input():
    with pytest.raises(ShapeError, match=r"\(N, 4\)"):
        box_iou(torch.zeros(3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="convention"):
        box_iou(torch.zeros(1, 4), torch.zeros(1, 4), convention="inclusive")
    with pytest.raises(ValueError, match="did you mean 'iobb'"):
        best_box_overlap([torch.zeros(1, 4)], [torch.zeros(1, 4)], criterion="iob")
    with pytest.raises(ShapeError, match="ground-truth sets"):
        best_box_overlap([torch.zeros(1, 4)], [])
