"""SR's fixed-threshold box readout, against boxes and IoUs worked out by hand."""
from __future__ import annotations

import pytest
import torch

from medcam.metrics import SR_IOU, SR_THRESHOLD, threshold_box_accuracy, threshold_boxes


def _map(h: int, w: int, *blocks: tuple[int, int, int, int, float]) -> torch.Tensor:
    m = torch.zeros(h, w)
    for y0, x0, y1, x1, v in blocks:
        m[y0:y1, x0:x1] = v
    return m


def test_sr_constants_are_the_papers() -> None:
    assert SR_THRESHOLD == 0.83 and SR_IOU == 0.1


def test_box_of_the_largest_component_above_the_threshold() -> None:
    # two blobs above 0.83: 2x2 (4 px) and 3x3 (9 px); a 0.8 blob stays below
    maps = torch.stack([_map(10, 10, (0, 0, 2, 2, 1.0), (5, 6, 8, 9, 0.9), (2, 4, 4, 6, 0.8))])
    (box,) = threshold_boxes(maps, 0.83)
    assert box.tolist() == [[6.0, 5.0, 9.0, 8.0]]


def test_constant_map_gives_the_whole_image() -> None:
    (box,) = threshold_boxes(torch.ones(1, 6, 9), 0.83)
    assert box.tolist() == [[0.0, 0.0, 9.0, 6.0]]


def test_accuracy_per_class_mean_and_cls_loc_by_hand() -> None:
    maps = torch.stack([
        _map(10, 10, (2, 2, 6, 6, 1.0)),   # box (2, 2, 6, 6)
        _map(10, 10, (0, 0, 2, 2, 1.0)),   # box (0, 0, 2, 2)
        _map(10, 10, (2, 2, 6, 6, 1.0)),   # box (2, 2, 6, 6)
    ])
    gt = [torch.tensor([[2.0, 2.0, 6.0, 8.0]]),                             # inclusive IoU 25/35
          torch.tensor([[5.0, 5.0, 9.0, 9.0]]),                             # disjoint: 0
          torch.tensor([[8.0, 8.0, 10.0, 10.0], [5.0, 5.0, 7.0, 7.0]])]    # best: overlap 2x2 of 25 + 9 - 4
    r = threshold_box_accuracy(maps, gt, ["a", "a", "b"], correct=torch.tensor([True, True, False]))
    expected = [25 / 35, 0.0, 4 / 30]
    assert r["ious"] == pytest.approx(expected)
    # all three > 0.1 except the second
    assert r["per_class"] == {"a": pytest.approx(50.0), "b": pytest.approx(100.0)}
    assert r["accuracy"] == pytest.approx(200 / 3)
    assert r["mean_over_classes"] == pytest.approx(75.0)
    assert r["cls_loc"] == pytest.approx(100 / 3)                 # only the first is both right and localized
    assert r["cls_loc_mean_over_classes"] == pytest.approx(25.0)  # a: 1 of 2, b: 0 of 1
    assert r["n"] == 3 and r["threshold"] == 0.83 and r["iou"] == 0.1


def test_iou_criterion_is_strict() -> None:
    maps = torch.stack([_map(10, 10, (0, 0, 1, 10, 1.0))])       # box (0, 0, 10, 1): inclusive area 11 x 2
    gt = [torch.tensor([[0.0, 0.0, 10.0, 10.0]])]                  # inclusive area 121, overlap 22
    r = threshold_box_accuracy(maps, gt, ["a"], iou=22 / 121)
    assert r["ious"] == pytest.approx([22 / 121]) and r["accuracy"] == 0.0
    assert threshold_box_accuracy(maps, gt, ["a"], iou=0.18)["accuracy"] == 100.0


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(Exception, match="need one each"):
        threshold_box_accuracy(torch.zeros(2, 4, 4), [torch.zeros(1, 4)], ["a", "b"])
    with pytest.raises(ValueError, match="threshold"):
        threshold_boxes(torch.zeros(1, 4, 4), 1.0)
