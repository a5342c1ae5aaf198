"""Mask overlap metrics for segmenters: Dice and IoU (batched torch, on the tensors' device).

For a predicted mask ``P`` and a ground truth ``G`` (per image, per class):

    Dice = 2 |P ∩ G| / (|P| + |G|)        (Dice, Ecology 1945; the F1 score of pixels)
    IoU  = |P ∩ G| / |P ∪ G|              (Jaccard index)

Empty masks: when ``P`` and ``G`` are both empty the score is ``empty``
(default 1.0: perfect agreement; pass ``float("nan")`` to leave such images
out of a ``nanmean``, as MONAI's ``ignore_empty`` does); when only one is
empty the score is 0.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ..errors import ShapeError
from ..params import check_choice

__all__ = ["dice", "mask_iou"]


def _binary(pred: Tensor, target: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, Tensor) or t.dim() < 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ShapeError(f"{name} must be a (..., H, W) tensor, e.g. (B, H, W) or (B, K, H, W); got {shape}")
    if pred.shape != target.shape:
        raise ShapeError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    p = pred if pred.dtype == torch.bool else pred > threshold
    g = target if target.dtype == torch.bool else target > 0.5
    return p, g


def _reduce(score: Tensor, reduction: str) -> Tensor:
    check_choice(reduction, ("none", "mean"), "reduction")
    return score if reduction == "none" else score.nanmean()


def dice(pred: Tensor, target: Tensor, *, threshold: float = 0.5, empty: float = 1.0,
         reduction: Literal["none", "mean"] = "none") -> Tensor:
    """Dice coefficient per image (and class).

    Args:
        pred: ``(..., H, W)`` bool masks, or probabilities in [0, 1] (foreground
            where ``pred > threshold``; apply the sigmoid/softmax to logits first).
        target: ``(..., H, W)`` bool (or 0/1) ground-truth masks, same shape.
        threshold: binarization threshold for float predictions.
        empty: score when both masks are empty.
        reduction: ``"none"`` -> ``(...)`` scores; ``"mean"`` -> their nan-mean.
    """
    p, g = _binary(pred, target, threshold)
    inter = (p & g).sum((-2, -1)).double()
    total = p.sum((-2, -1)).double() + g.sum((-2, -1)).double()
    score = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.full_like(total, empty))
    return _reduce(score, reduction)


def mask_iou(pred: Tensor, target: Tensor, *, threshold: float = 0.5, empty: float = 1.0,
             reduction: Literal["none", "mean"] = "none") -> Tensor:
    """Intersection over union (Jaccard) per image (and class); arguments as :func:`dice`."""
    p, g = _binary(pred, target, threshold)
    inter = (p & g).sum((-2, -1)).double()
    union = (p | g).sum((-2, -1)).double()
    score = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(union, empty))
    return _reduce(score, reduction)
