"""Box overlap: IoU and IoBB, pairwise and best match per image (batched torch).

Boxes are ``(x0, y0, x1, y1)`` in pixels. ``convention="exclusive"`` (medcam,
``medcam/boxes.py``): ``x1``/``y1`` are exclusive edges and a box's area is
``(x1 - x0) * (y1 - y0)``. ``convention="wsol"``: the wsolevaluation reference
(Choe et al., CVPR 2020) treats ``x1``/``y1`` as inclusive pixels and adds one
to every width and height; use it to reproduce that code's numbers.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor

from ..errors import ShapeError
from ..params import check_choice

__all__ = ["box_area", "box_iou", "box_iobb", "best_box_overlap"]

Convention = Literal["exclusive", "wsol"]


def _check(boxes: Tensor, what: str) -> Tensor:
    if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ShapeError(f"{what} must be a (N, 4) tensor of (x0, y0, x1, y1), got {shape}")
    return boxes if boxes.is_floating_point() else boxes.double()


def _one(convention: str) -> float:
    check_choice(convention, ("exclusive", "wsol"), "box convention")
    return 1.0 if convention == "wsol" else 0.0


def box_area(boxes: Tensor, *, convention: Convention = "exclusive") -> Tensor:
    """Areas of ``(N, 4)`` boxes, ``(N,)``; boxes with ``x1 < x0`` or ``y1 < y0`` have area 0."""
    b = _check(boxes, "boxes")
    one = _one(convention)
    return (b[:, 2] - b[:, 0] + one).clamp_min(0) * (b[:, 3] - b[:, 1] + one).clamp_min(0)


def _intersection(a: Tensor, b: Tensor, one: float) -> Tensor:
    lo = torch.maximum(a[:, None, :2], b[None, :, :2])
    hi = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (hi - lo + one).clamp_min(0)
    return wh[..., 0] * wh[..., 1]


def box_iou(boxes_a: Tensor, boxes_b: Tensor, *, convention: Convention = "exclusive") -> Tensor:
    """Pairwise intersection over union.

    Args:
        boxes_a: ``(N, 4)``; boxes_b: ``(M, 4)``, ``(x0, y0, x1, y1)`` pixels.
        convention: ``"exclusive"`` (medcam) or ``"wsol"`` (inclusive +1 areas).

    Returns:
        ``(N, M)`` IoU; 0 where the union is not positive (degenerate boxes).
    """
    a, b = _check(boxes_a, "boxes_a"), _check(boxes_b, "boxes_b")
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    one = _one(convention)
    inter = _intersection(a, b, one)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :] - inter
    ok = union > 0
    return torch.where(ok, inter / torch.where(ok, union, torch.ones_like(union)), torch.zeros_like(union))


def box_iobb(pred: Tensor, gt: Tensor, *, convention: Convention = "exclusive") -> Tensor:
    """Intersection over the predicted box's area (IoBB, Wang et al., ChestX-ray8, CVPR 2017).

    ``IoBB = area(pred ∩ gt) / area(pred)``: how much of a detected box lies in
    the ground truth ("similar to Area of Precision or Purity").

    Args:
        pred: ``(N, 4)`` predicted boxes; gt: ``(M, 4)`` ground-truth boxes.
        convention: ``"exclusive"`` (medcam) or ``"wsol"``.

    Returns:
        ``(N, M)``; 0 for a predicted box with no area.
    """
    p, g = _check(pred, "pred"), _check(gt, "gt")
    dtype = torch.promote_types(p.dtype, g.dtype)
    p, g = p.to(dtype), g.to(dtype)
    one = _one(convention)
    inter = _intersection(p, g, one)
    area = ((p[:, 2] - p[:, 0] + one).clamp_min(0) * (p[:, 3] - p[:, 1] + one).clamp_min(0))[:, None]
    ok = area > 0
    return torch.where(ok, inter / torch.where(ok, area, torch.ones_like(area)), torch.zeros_like(inter))


def best_box_overlap(pred: Sequence[Tensor], gt: Sequence[Tensor], *, criterion: Literal["iou", "iobb"] = "iou",
                     convention: Convention = "exclusive") -> Tensor:
    """Best match per image: the largest IoU (or IoBB) over all (predicted, ground-truth) pairs.

    Args:
        pred: one ``(n_i, 4)`` tensor per image; gt: one ``(m_i, 4)`` per image.
        criterion: ``"iou"`` or ``"iobb"``.
        convention: ``"exclusive"`` or ``"wsol"``.

    Returns:
        ``(B,)`` float; 0 for an image with no predicted or no ground-truth box.
    """
    check_choice(criterion, ("iou", "iobb"), "criterion")
    if len(pred) != len(gt):
        raise ShapeError(f"{len(pred)} predicted box sets for {len(gt)} ground-truth sets")
    fn = box_iou if criterion == "iou" else box_iobb
    out = []
    for i, (p, g) in enumerate(zip(pred, gt)):
        p = _check(torch.as_tensor(p).reshape(-1, 4), f"pred[{i}]")
        g = _check(torch.as_tensor(g).reshape(-1, 4), f"gt[{i}]")
        out.append(fn(p, g, convention=convention).max() if len(p) and len(g) else torch.zeros((), dtype=p.dtype))
    return torch.stack(out) if out else torch.zeros(0)
