"""The ChestX-ray8 protocol: box generation at 60/180, strict IoU/IoBB matching, Acc./AFP tables."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.errors import DataError
from medcam.metrics import ChestXray8Table, chestxray8_boxes, match_boxes


def test_boxes_at_both_levels_by_hand():
    s = np.zeros((1, 6, 8))
    s[0, 1:3, 1:3] = 0.5    # u = 127: above 60 only
    s[0, 4, 5:8] = 1.0      # u = 255: above both
    s[0, 0, 7] = 60 / 255   # u = 60: not above 60 (strict)
    boxes = chestxray8_boxes(s, normalize=False)
    assert boxes[0].tolist() == [[1, 1, 3, 3], [5, 4, 8, 5], [5, 4, 8, 5]]
    assert chestxray8_boxes(s, thresholds=(180,), normalize=False)[0].tolist() == [[5, 4, 8, 5]]


def test_matching_is_strict():
    pred = torch.tensor([[0, 0, 10, 10], [20, 20, 22, 22]])
    gt = torch.tensor([[0, 0, 5, 5]])  # IoU = IoBB = 25 / 100 with the first box
    found, false_pos = match_boxes(pred, gt, criterion="iou", thresholds=(0.1, 0.25, 0.5))
    assert found.tolist() == [[True, False, False]]
    assert false_pos.tolist() == [1, 2, 2]
    found, _ = match_boxes(torch.tensor([[1, 1, 3, 3]]), gt, criterion="iobb", thresholds=(0.9,))
    assert found.tolist() == [[True]]  # the small box lies inside: IoBB = 1 > 0.9, IoU = 4 / 25
    found, false_pos = match_boxes(torch.zeros(0, 4), gt, thresholds=(0.5,))
    assert found.tolist() == [[False]] and false_pos.tolist() == [0]


def test_table_accumulates_per_finding():
    table = ChestXray8Table(criterion="iobb", thresholds=(0.1, 0.5))
    preds = [torch.tensor([[0, 0, 10, 10]]), torch.tensor([[0, 0, 4, 4], [50, 50, 60, 60]])]
    gts = [torch.tensor([[0, 0, 4, 4]]), torch.tensor([[0, 0, 4, 4], [30, 30, 40, 40]])]
    table.update(preds[:1], gts[:1], ["Mass"])
    table.update(preds[1:], gts[1:], ["Nodule"])
    out = table.compute()
    assert out["Mass"]["acc"] == {0.1: 1.0, 0.5: 0.0} and out["Mass"]["afp"] == {0.1: 0.0, 0.5: 1.0}
    assert out["Nodule"]["acc"] == {0.1: 0.5, 0.5: 0.5} and out["Nodule"]["afp"] == {0.1: 1.0, 0.5: 1.0}
    assert out["all"]["boxes"] == 3 and out["all"]["acc"][0.1] == pytest.approx(2 / 3)
    text = table.to_markdown()
    assert text.splitlines()[0] == "| T(IoBB) | Mass | Nodule | all |"
    assert "| 0.5 AFP | 1.0000 | 1.0000 | 1.0000 |" in text


def test_bad_input():
    with pytest.raises(ValueError, match="8-bit"):
        chestxray8_boxes(np.random.rand(1, 4, 4), thresholds=(300,))
    with pytest.raises(DataError, match="at least one ground-truth box"):
        ChestXray8Table().update([torch.zeros(0, 4)], [torch.zeros(0, 4)], ["Mass"])
