"""Dice and mask IoU: hand-computed values and the empty-mask conventions."""
from __future__ import annotations

import math

import pytest
import torch

from medcam.errors import ShapeError
from medcam.metrics import dice, mask_iou


def _masks():
    pred = torch.zeros(4, 3, 3, dtype=torch.bool)
    target = torch.zeros(4, 3, 3, dtype=torch.bool)
    pred[0, 0, :] = True            # 3 pixels
    target[0, 0:2, 0] = True        # 2 pixels, 1 shared
    pred[1, 1, 1] = target[1, 1, 1] = True
    target[2, 2, 2] = True          # nothing predicted
    return pred, target             # image 3: both empty


def test_by_hand():
    pred, target = _masks()
    assert dice(pred, target).tolist() == [pytest.approx(2 * 1 / 5), 1.0, 0.0, 1.0]
    assert mask_iou(pred, target).tolist() == [pytest.approx(1 / 4), 1.0, 0.0, 1.0]


def test_empty_convention_and_reduction():
    pred, target = _masks()
    scores = dice(pred, target, empty=float("nan"))
    assert math.isnan(scores[3])
    assert dice(pred, target, empty=float("nan"), reduction="mean").item() == pytest.approx((0.4 + 1 + 0) / 3)
    assert mask_iou(pred, target, reduction="mean").item() == pytest.approx((0.25 + 1 + 0 + 1) / 4)


def test_probabilities_and_classes():
    probs = torch.tensor([[[[0.2, 0.7], [0.5, 0.9]]]])  # (B=1, K=1, 2, 2): foreground is > 0.5
    target = torch.tensor([[[[0, 1], [1, 1]]]])
    assert dice(probs, target).shape == (1, 1)
    assert dice(probs, target).item() == pytest.approx(2 * 2 / 5)
    assert mask_iou(probs, target, threshold=0.4).item() == 1.0


def test_bad_input():
    with pytest.raises(ShapeError, match="same shape"):
        dice(torch.zeros(2, 3, 3), torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match=r"\(\.\.\., H, W\)"):
        mask_iou(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        dice(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), reduction="sum")
