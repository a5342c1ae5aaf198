"""Scores of a segmenter's masks over a data set: Dice, IoU and box accuracy, overall and per image class.

Masks are scored image by image into counts (:func:`mask_stats`), so a data
set of any size is summarized from ``N x 5`` numbers (:func:`segmentation_metrics`):

* ``dice``, ``iou``: *pooled* over every pixel of the images at once,
  ``2 sum|P∩G| / (sum|P| + sum|G|)`` and ``sum|P∩G| / sum|P∪G|`` (defined
  even when most images have no foreground; 1 when nothing is predicted nor true);
* ``dice_per_image``, ``iou_per_image``: the mean of the per-image scores
  over the images whose true mask has foreground;
* ``dice_all_images``: the mean per-image Dice over all images, an image with
  neither a true nor a predicted foreground scoring 1 (:func:`medcam.metrics.dice`'s convention);
* ``box_acc``: boundary-box accuracy, the share of images with true foreground
  whose predicted mask's bounding box (around all its foreground) has IoU >= 0.5
  with the true mask's bounding box (an empty prediction scores IoU 0); ``box_iou``
  is the mean of those IoUs;
* ``empty_acc``: the share of images without true foreground where nothing is predicted.

Definitions: Dice, *Ecology* 26 (1945); Jaccard (1912); boxes as in ``medcam.boxes``
(exclusive ``x1``/``y1``).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..boxes import union_box
from ..errors import ShapeError

__all__ = ["STAT_FIELDS", "BOX_IOU_THRESHOLD", "mask_stats", "segmentation_metrics", "SEGMENTATION_SCALARS"]

#: Columns of :func:`mask_stats`.
STAT_FIELDS: tuple[str, ...] = ("intersection", "pred", "target", "union", "box_iou")
#: The box IoU an image needs for ``box_acc``.
BOX_IOU_THRESHOLD = 0.5
#: The scalar metrics of :func:`segmentation_metrics` (k-fold summaries, monitors).
SEGMENTATION_SCALARS: tuple[str, ...] = ("dice", "iou", "dice_per_image", "iou_per_image", "dice_all_images",
                                         "box_acc", "box_iou", "empty_acc")


def _paired_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of boxes ``a[i]`` and ``b[i]``, ``(N, 4)`` each (exclusive edges) -> ``(N,)``; 0 for empty unions."""
    wh = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp_min(0)
    inter = wh[:, 0] * wh[:, 1]
    area = lambda x: (x[:, 2] - x[:, 0]).clamp_min(0) * (x[:, 3] - x[:, 1]).clamp_min(0)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def mask_stats(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image counts of predicted vs true masks.

    Args:
        pred: ``(B, H, W)`` bool predicted masks.
        target: ``(B, H, W)`` bool true masks.

    Returns:
        ``(B, 5)`` float64: :data:`STAT_FIELDS` (pixel counts of the intersection,
        the prediction, the truth and the union, and the IoU of their bounding boxes).
    """
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor) or pred.dim() != 3 or pred.shape != target.shape:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (pred, target)]
        raise ShapeError(f"mask_stats: pred and target must be (B, H, W) masks of one shape, got {shapes[0]} "
                         f"and {shapes[1]}")
    p, g = pred.bool(), target.bool()
    counts = [(p & g), p, g, (p | g)]
    sums = [c.flatten(1).sum(1).double() for c in counts]
    boxes = _paired_box_iou(union_box(p, empty="zero").double(), union_box(g, empty="zero").double())
    return torch.stack(sums + [boxes], 1).cpu()


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 1.0


def _mean(values: Tensor) -> float | None:
    return float(values.mean()) if values.numel() else None


def _group(stats: Tensor) -> dict[str, Any]:
    inter, pred, target, union, box = stats.unbind(1)
    has = target > 0
    per_dice = torch.where(pred + target > 0, 2 * inter / (pred + target).clamp_min(1), torch.ones_like(inter))
    per_iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
    return {
        "n": int(stats.shape[0]),
        "n_with_mask": int(has.sum()),
        "dice": _ratio(2 * float(inter.sum()), float((pred + target).sum())),
        "iou": _ratio(float(inter.sum()), float(union.sum())),
        "dice_per_image": _mean(per_dice[has]),
        "iou_per_image": _mean(per_iou[has]),
        "dice_all_images": _mean(per_dice),
        "box_acc": _mean((box[has] >= BOX_IOU_THRESHOLD).double()),
        "box_iou": _mean(box[has]),
        "empty_acc": _mean((pred[~has] == 0).double()),
    }


def segmentation_metrics(stats: Tensor, labels: Tensor | None = None,
                         class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Dice, IoU and box accuracy (module docstring) overall and per image class.

    Args:
        stats: ``(N, 5)`` rows of :func:`mask_stats`.
        labels: ``(N,)`` image class indices (e.g. BUSI normal / benign / malignant), or None.
        class_names: names of those classes, in label order.

    Returns:
        the overall scores (:data:`SEGMENTATION_SCALARS`, ``n``, ``n_with_mask``) and
        ``per_class``: ``{class name: the same scores over that class's images}``
        (classes with no image are left out; empty without ``labels``).
    """
    if not isinstance(stats, Tensor) or stats.dim() != 2 or stats.shape[1] != len(STAT_FIELDS):
        raise ShapeError(f"stats must be (N, {len(STAT_FIELDS)}) rows of mask_stats, got "
                         f"{tuple(stats.shape) if isinstance(stats, Tensor) else type(stats).__name__}")
    out = _group(stats.double())
    per_class: dict[str, Any] = {}
    if labels is not None:
        labels = torch.as_tensor(labels).reshape(-1)
        if labels.numel() != stats.shape[0]:
            raise ShapeError(f"labels: {labels.numel()} for {stats.shape[0]} rows of stats")
        k = int(labels.max()) + 1 if labels.numel() else 0
        names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
        for i, name in enumerate(names):
            rows = labels == i
            if rows.any():
                per_class[str(name)] = _group(stats.double()[rows])
    out["per_class"] = per_class
    return out
