"""Box accuracy at one fixed map threshold: the readout of the SR chest X-ray seed.

SR (T. Wang, K. Huang, M. Xu, J. Huang, "Weakly supervised chest X-ray
abnormality localization with non-linear modulation and foreground control",
*Scientific Reports* 14, 2024; code WTY321/SR ``inference.py`` and
``utils/IoU.py``, read, not copied) reports localization as follows: the map
of each test image for its ground-truth class is min-max normalized and
resized to the input, the pixels ``> 0.83`` are kept, and the box of their
largest 8-connected component (by pixel count; the whole image when nothing
is above the threshold) is compared with the ground-truth box by IoU with
inclusive pixel areas (``(x1 - x0 + 1) * (y1 - y0 + 1)``). A box is correct
when ``IoU > 0.1`` (strict). The accuracy is computed per class and SR prints
the mean over classes ("GT Loc acc"); "Cls-Loc acc" also requires the image's
top-1 class to be right. BAS reads its boxes the same way at threshold 0.15.

medcam's maps arrive already resized and min-max normalized (SR normalizes
before resizing; the boxes differ by at most the interpolation). Accuracies
are percentages, as medcam's other box accuracies.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..boxes import map_to_boxes
from ..errors import ShapeError
from ._inputs import normalize_maps
from .iou import box_iou

__all__ = ["SR_THRESHOLD", "SR_IOU", "threshold_boxes", "threshold_box_accuracy"]

#: SR's map threshold (``inference.py --threshold``).
SR_THRESHOLD = 0.83
#: SR's IoU criterion: a box is correct when IoU > 0.1.
SR_IOU = 0.1


def threshold_boxes(maps: Any, threshold: float) -> list[Tensor]:
    """The box of the largest component of ``minmax(map) > threshold`` per map; the whole map if none.

    Args:
        maps: ``(B, H, W)`` maps (torch or NumPy).

    Returns:
        one ``(1, 4)`` float64 tensor per map, ``(x0, y0, x1, y1)`` with exclusive ``x1``/``y1``.
    """
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    scores = torch.from_numpy(normalize_maps(maps))
    h, w = scores.shape[-2:]
    whole = torch.tensor([[0.0, 0.0, float(w), float(h)]], dtype=torch.float64)
    return [b.double() if b.shape[0] else whole.clone() for b in map_to_boxes(scores, float(threshold),
                                                                              mode="largest")]


def threshold_box_accuracy(maps: Any, boxes: Sequence[Any], classes: Sequence[str], *,
                           threshold: float = SR_THRESHOLD, iou: float = SR_IOU,
                           correct: Any = None) -> dict[str, Any]:
    """SR's localization accuracy (module docstring) of ``maps`` against ground-truth boxes.

    Args:
        maps: ``(n, H, W)`` maps, one per scored entry (an image and one of its classes).
        boxes: ``n`` ground-truth box sets ``(m_i, 4)`` in map pixels; the best IoU over them counts.
        classes: ``n`` class names, one per entry (the per-class accuracies).
        threshold: the map threshold (``> threshold`` after min-max normalization).
        iou: a box is correct when its IoU is ``> iou``.
        correct: ``(n,)`` bool, whether each entry's image has the right top-1 class (Cls-Loc), or None.

    Returns:
        ``{"threshold", "iou", "n", "accuracy" (all entries), "per_class" {name: accuracy},
        "mean_over_classes" (SR's "GT Loc acc"), "cls_loc", "cls_loc_mean_over_classes"
        (None without ``correct``), "ious" (per entry)}``, accuracies in percent.
    """
    pred = threshold_boxes(maps, threshold)
    if len(boxes) != len(pred) or len(classes) != len(pred):
        raise ShapeError(f"{len(pred)} maps, {len(boxes)} box sets and {len(classes)} classes: need one each")
    ious = torch.zeros(len(pred), dtype=torch.float64)
    for k, (p, g) in enumerate(zip(pred, boxes)):
        gt = torch.as_tensor(g, dtype=torch.float64).reshape(-1, 4)
        if gt.shape[0]:
            ious[k] = box_iou(p, gt, convention="wsol").max()
    hit = ious > float(iou)
    ok = None if correct is None else torch.as_tensor(correct).reshape(-1).bool().cpu()
    names = [str(c) for c in classes]
    per_class: dict[str, float] = {}
    per_class_cls: dict[str, float] = {}
    for name in sorted(set(names)):
        rows = torch.tensor([c == name for c in names])
        per_class[name] = 100.0 * float(hit[rows].double().mean())
        if ok is not None:
            per_class_cls[name] = 100.0 * float((hit & ok)[rows].double().mean())
    n = len(pred)
    return {"threshold": float(threshold), "iou": float(iou), "n": n,
            "accuracy": 100.0 * float(hit.double().mean()) if n else None,
            "per_class": per_class,
            "mean_over_classes": sum(per_class.values()) / len(per_class) if per_class else None,
            "cls_loc": None if ok is None or not n else 100.0 * float((hit & ok).double().mean()),
            "cls_loc_mean_over_classes": (sum(per_class_cls.values()) / len(per_class_cls)
                                          if per_class_cls else None),
            "ious": ious.tolist()}
