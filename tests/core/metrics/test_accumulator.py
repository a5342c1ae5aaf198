"""Streaming evaluation over batches gives exactly the one-shot numbers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medcam.metrics import LocalizationAccumulator, max_box_acc, max_box_acc_v2, pxap, top1_loc
from medcam.metrics.pxap import pixel_iou_curves


def _data(n: int = 10, size: int = 24):
    g = torch.Generator().manual_seed(0)
    maps = F.interpolate(torch.rand(n, 1, 5, 5, generator=g), size=(size, size), mode="bilinear")[:, 0]
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    boxes = []
    for i in range(n):
        x0, y0 = int(torch.randint(0, size - 8, (1,), generator=g)), int(torch.randint(0, size - 8, (1,), generator=g))
        masks[i, y0:y0 + 8, x0:x0 + 8] = True
        boxes.append(torch.tensor([[x0, y0, x0 + 8, y0 + 8]]))
    correct = torch.rand(n, generator=g) < 0.7
    return maps, boxes, masks, correct


def test_batches_equal_one_shot():
    maps, boxes, masks, correct = _data()
    acc = LocalizationAccumulator()
    for i in range(0, len(maps), 4):
        acc.update(maps[i:i + 4], boxes=boxes[i:i + 4], masks=masks[i:i + 4], correct=correct[i:i + 4])
    out = acc.compute()
    assert out["n_box_images"] == out["n_mask_images"] == 10
    assert out["max_box_acc_v2"] == max_box_acc_v2(maps, boxes)["value"]
    assert out["max_box_acc"] == out["gt_known_loc"] == max_box_acc(maps, boxes)["value"]
    assert out["top1_loc"] == top1_loc(maps, boxes, correct)
    assert out["pxap"] == pxap(maps, masks)
    curve = pixel_iou_curves(maps, masks).mean(0)
    assert out["pixel_iou"]["max"] == pytest.approx(curve.max())
    one_shot = max_box_acc(maps, boxes, mode="all")
    assert out["mean_box_iou"]["all"]["max"] == pytest.approx(one_shot["ious"].mean(0).max())
    assert out["box_acc"]["all"][0.5]["max"] == one_shot["per_iou"][0.5]


def test_boxes_only_masks_only_and_reset():
    maps, boxes, masks, _ = _data(4)
    acc = LocalizationAccumulator(box_modes=("all",), interval=0.001)
    acc.update(maps, boxes=boxes)
    out = acc.compute()
    assert out["pxap"] is None and out["max_box_acc"] is None and out["top1_loc"] is None
    assert out["max_box_acc_v2"] == max_box_acc_v2(maps, boxes, interval=0.001)["value"]
    acc.reset()
    acc.update(maps, masks=masks)
    out = acc.compute()
    assert out["box_acc"] is None and out["pxap"] == pxap(maps, masks, interval=0.001)


def test_correct_must_come_with_every_batch():
    maps, boxes, _, correct = _data(4)
    acc = LocalizationAccumulator()
    acc.update(maps[:2], boxes=boxes[:2])
    with pytest.raises(ValueError, match="missing from earlier batches"):
        acc.update(maps[2:], boxes=boxes[2:], correct=correct[2:])
    acc = LocalizationAccumulator()
    acc.update(maps[:2], boxes=boxes[:2], correct=correct[:2])
    with pytest.raises(ValueError, match="every batch"):
        acc.update(maps[2:], boxes=boxes[2:])
    with pytest.raises(ValueError, match="boxes=, masks="):
        acc.update(maps)
    with pytest.raises(ValueError, match="did you mean 'all'"):
        LocalizationAccumulator(box_modes=("al",))
