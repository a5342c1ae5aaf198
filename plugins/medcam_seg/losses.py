"""Segmentation losses on mask logits: soft Dice and binary cross-entropy.

Both follow medcam's loss protocol (:mod:`medcam.loss`) for segmenters:
``loss(logits, batch, model) -> scalar``, with ``logits`` the segmenter's
output ``(B, K, H, W)`` and ``batch["mask"]`` the ground truth ``(B, H, W)``
bool (one foreground channel, ``K = 1``) or ``(B, K, H, W)``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import DataError, ShapeError

__all__ = ["SoftDiceLoss", "MaskBCELoss", "mask_target"]


def mask_target(logits: Any, batch: Mapping[str, Any], loss: str) -> Tensor:
    """The batch's masks as a float target shaped like ``logits`` ``(B, K, H, W)``.

    Raises:
        DataError: the batch has no ``"mask"`` (the data set yields none).
        ShapeError: ``logits`` are not ``(B, K, H, W)`` mask logits (e.g. a classifier's
            output), or the masks do not match them.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 4:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ShapeError(f"loss '{loss}' is a segmentation loss: it needs a segmenter's mask logits (B, K, H, W), "
                         f"got {got}; a classifier trains with ce, focal or weighted_bce")
    mask = batch.get("mask")
    if mask is None:
        raise DataError(f"loss '{loss}' needs masks (batch['mask']); train on a data set with masks "
                        f"(busi, masks: images/ + masks/)")
    target = mask[:, None] if mask.dim() == 3 else mask
    if target.shape != logits.shape:
        raise ShapeError(f"loss '{loss}': masks {tuple(mask.shape)} do not match the mask logits "
                         f"{tuple(logits.shape)}; a data set's binary masks fit num_classes: 1")
    return target.to(logits.dtype)


class SoftDiceLoss(nn.Module):
    """``1 - soft Dice`` of ``sigmoid(logits)`` and the masks.

    Soft Dice (Milletari, Navab, Ahmadi, V-Net, 3DV 2016) with additive smoothing
    ``s``: ``(2 sum(p g) + s) / (sum(p) + sum(g) + s)``, the sums over the whole
    batch and every channel (``per_image=False``, stable when many images have
    no foreground) or per image and channel, then averaged (``per_image=True``).

    Args:
        smooth: ``s`` > 0 (declared by the registered ``dice`` factory); keeps the ratio defined for empty masks (1 when both are empty).
        per_image: sum per image and channel instead of over the batch.
    """

    def __init__(self, smooth: float = 1.0, per_image: bool = False):
        super().__init__()
        self.smooth, self.per_image = float(smooth), bool(per_image)

    def forward(self, logits: Tensor, batch: Mapping[str, Any], model: nn.Module | None = None) -> Tensor:
        target = mask_target(logits, batch, "dice")
        prob = torch.sigmoid(logits.float())
        dims = (2, 3) if self.per_image else (0, 1, 2, 3)
        inter = (prob * target).sum(dims)
        total = prob.sum(dims) + target.sum(dims)
        return (1 - (2 * inter + self.smooth) / (total + self.smooth)).mean()


class MaskBCELoss(nn.Module):
    """Mean binary cross-entropy of the mask logits per pixel.

    Args:
        pos_weight: weight of foreground pixels > 0 (``None``: 1), e.g. the
            background / foreground pixel ratio for small lesions.
    """

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def forward(self, logits: Tensor, batch: Mapping[str, Any], model: nn.Module | None = None) -> Tensor:
        target = mask_target(logits, batch, "mask_bce")
        weight = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=weight)
