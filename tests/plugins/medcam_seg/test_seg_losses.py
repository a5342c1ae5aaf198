"""medcam_seg.losses: soft Dice and mask BCE against hand-written formulas, and their errors."""
from __future__ import annotations

import math

import pytest
import torch

from medcam.build import build_loss
from medcam.errors import DataError, ShapeError, SpecError
from medcam.model import ModelOutput
from medcam.registry import losses
from medcam_seg.losses import MaskBCELoss, SoftDiceLoss


def _batch(seed: int = 0) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 1, 5, 5, generator=g)
    mask = torch.rand(3, 5, 5, generator=g) > 0.6
    return logits, {"mask": mask, "image": torch.zeros(3, 1, 5, 5)}


def test_soft_dice_is_one_minus_the_smoothed_ratio_over_the_batch():
    logits, batch = _batch()
    p = [1 / (1 + math.exp(-v)) for v in logits.flatten().tolist()]
    g = [float(v) for v in batch["mask"].flatten().tolist()]
    ratio = (2 * sum(a * b for a, b in zip(p, g)) + 1) / (sum(p) + sum(g) + 1)
    assert float(SoftDiceLoss()(logits, batch)) == pytest.approx(1 - ratio, rel=1e-5)


def test_soft_dice_per_image_averages_the_images():
    logits, batch = _batch(1)
    per = [float(SoftDiceLoss()(logits[i:i + 1], {"mask": batch["mask"][i:i + 1]})) for i in range(3)]
    assert float(SoftDiceLoss(per_image=True)(logits, batch)) == pytest.approx(sum(per) / 3, rel=1e-5)


def test_perfect_logits_give_a_dice_loss_near_zero():
    _, batch = _batch(2)
    logits = (batch["mask"][:, None].float() * 2 - 1) * 50
    assert float(SoftDiceLoss()(logits, batch)) < 1e-6


def test_mask_bce_is_the_mean_pixel_cross_entropy_with_a_foreground_weight():
    logits, batch = _batch(3)
    x, y = logits.flatten().tolist(), [float(v) for v in batch["mask"].flatten().tolist()]

    def bce(w: float) -> float:
        s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
        return sum(-(w * t * math.log(s(v)) + (1 - t) * math.log(1 - s(v))) for v, t in zip(x, y)) / len(x)

    assert float(MaskBCELoss()(logits, batch)) == pytest.approx(bce(1.0), rel=1e-5)
    assert float(MaskBCELoss(pos_weight=3.0)(logits, batch)) == pytest.approx(bce(3.0), rel=1e-5)


def test_losses_are_registered_as_segmentation_losses_and_build_by_name():
    assert losses.info("dice")["task"] == "segmentation" and losses.info("mask_bce")["task"] == "segmentation"
    logits, batch = _batch(4)
    total, logs = build_loss([{"name": "dice"}, {"name": "mask_bce", "weight": 0.5}], num_classes=1)(logits, batch, None)
    assert float(total) == pytest.approx(logs["dice"] + 0.5 * logs["mask_bce"], rel=1e-6)


def test_errors_name_the_problem():
    logits, batch = _batch(5)
    with pytest.raises(DataError, match="needs masks"):
        SoftDiceLoss()(logits, {"image": batch["image"]})
    with pytest.raises(ShapeError, match="segmenter's mask logits .* a classifier trains with ce"):
        MaskBCELoss()(ModelOutput(logits=torch.zeros(3, 2)), batch)
    with pytest.raises(ShapeError, match="num_classes: 1"):
        SoftDiceLoss()(torch.zeros(3, 2, 5, 5), batch)
    with pytest.raises(SpecError, match=r"loss\[0\]\.smooth: expected a positive number, got 0"):
        build_loss({"name": "dice", "smooth": 0}, num_classes=1)
