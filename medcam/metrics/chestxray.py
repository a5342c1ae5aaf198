"""The ChestX-ray8 box protocol (Wang et al., "ChestX-ray8: Hospital-scale Chest X-ray
Database and Benchmarks on Weakly-Supervised Classification and Localization of
Common Thorax Diseases", CVPR 2017, arXiv 1705.02315, Sec. 4.2 and Tables 4 / 7).

* Box generation: each heat map is "normalized to [0, 255] and then
  thresholded by {60, 180} individually"; boxes cover the isolated regions
  (1-3 boxes per map). The paper does not say how the map is scaled, whether
  the threshold is strict, or which connectivity it uses; we take
  ``u = uint8(255 * minmax(map))`` (as wsolevaluation quantizes), foreground
  ``u > T`` (OpenCV ``THRESH_BINARY``), 8-connected components, and return
  the boxes of both thresholds (60 first, then 180).
* Localization: a ground-truth box is found when some predicted box has
  ``IoU > T(IoU)`` (or ``IoBB > T(IoBB)``, the intersection over the
  predicted box's area), strictly, as the paper writes. Accuracy is the
  fraction of ground-truth boxes found; AFP (average false positives) is the
  number of predicted boxes that match no ground-truth box at ``T``, per image.
  The paper defines AFP only by name; this is our reading of it.
* Tables: one row pair (Acc., AFP) per threshold and one column per
  finding, e.g. ``T(IoBB)`` in {0.1, 0.25, 0.5, 0.75, 0.9}.

Boxes are medcam boxes: ``(x0, y0, x1, y1)`` pixels, exclusive ``x1``/``y1``
(NIH ``[x, y, w, h]`` is ``(x, y, x + w, y + h)``).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ..boxes import component_boxes, connected_components
from ..errors import ShapeError
from ..params import check_choice
from ._inputs import as_box_lists, as_maps, check_unit_maps, normalize_maps, quantize
from .iou import box_iobb, box_iou

__all__ = ["chestxray8_boxes", "match_boxes", "ChestXray8Table", "CHESTXRAY8_THRESHOLDS", "CHESTXRAY8_IOBB_THRESHOLDS",
           "CHESTXRAY8_IOU_THRESHOLDS"]

CHESTXRAY8_THRESHOLDS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)
#: The T(IoBB) rows of the paper's Table 4.
CHESTXRAY8_IOBB_THRESHOLDS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
#: The T(IoU) rows of the paper's supplementary Table 7.
CHESTXRAY8_IOU_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
Criterion = Literal["iou", "iobb"]


def chestxray8_boxes(maps: Any, *, thresholds: Sequence[int] = (60, 180), normalize: bool = True) -> list[Tensor]:
    """Boxes from heat maps by the ChestX-ray8 rule (see the module docstring).

    Args:
        maps: ``(B, H, W)`` heat maps (torch or NumPy).
        thresholds: 8-bit levels; each gives the boxes of ``u > T``.
        normalize: min-max normalize each map to [0, 1] before scaling to [0, 255]
            (else maps must already be in [0, 1]).

    Returns:
        one ``(n_b, 4)`` float tensor per image, the boxes of every threshold
        in order, each threshold's components in raster order of their first pixel.
    """
    levels = [int(t) for t in thresholds]
    if not levels or any(not 0 <= t <= 255 for t in levels):
        raise ValueError(f"thresholds must be one or more 8-bit levels in [0, 255], got {list(thresholds)}")
    scores = normalize_maps(maps) if normalize else as_maps(maps)
    if not normalize:
        check_unit_maps(scores)
    u = torch.from_numpy(quantize(scores))
    per_threshold = []
    for level in levels:
        labels, counts = connected_components(u > level, connectivity=8)
        per_threshold.append(component_boxes(labels, counts))
    return [torch.cat(parts) for parts in zip(*per_threshold)]


def match_boxes(pred: Tensor, gt: Tensor, *, criterion: Criterion = "iobb",
                thresholds: Sequence[float] = CHESTXRAY8_THRESHOLDS) -> tuple[Tensor, Tensor]:
    """Which ground-truth boxes one image's predictions find, and its false positives.

    Args:
        pred: ``(n, 4)`` predicted boxes; gt: ``(m, 4)`` ground-truth boxes.
        criterion: ``"iou"`` or ``"iobb"``.
        thresholds: the ``T`` values; a match needs ``criterion > T``.

    Returns:
        ``(found, false_positives)``: ``(m, len(T))`` bool and ``(len(T),)`` int64.
    """
    check_choice(criterion, ("iou", "iobb"), "criterion")
    t = torch.as_tensor(list(thresholds), dtype=torch.float64)
    pred = torch.as_tensor(pred, dtype=torch.float64).reshape(-1, 4)
    gt = torch.as_tensor(gt, dtype=torch.float64).reshape(-1, 4)
    score = (box_iou if criterion == "iou" else box_iobb)(pred, gt)  # (n, m)
    hit = score[..., None] > t  # (n, m, T)
    found = hit.any(0) if len(pred) else torch.zeros(len(gt), len(t), dtype=torch.bool)
    false_pos = (~hit.any(1)).sum(0) if len(gt) else torch.full((len(t),), len(pred), dtype=torch.long)
    return found, false_pos


class ChestXray8Table:
    """Accuracy and average false positives per finding and threshold, accumulated over batches.

    Each entry is one (image, finding) pair: the boxes generated from the map
    of that finding, and the ground-truth boxes of that finding in that image.

    Example::

        table = ChestXray8Table(criterion="iobb", thresholds=(0.1, 0.25, 0.5, 0.75, 0.9))
        for batch in loader:
            maps = cams_for(batch["finding"])                     # (B, H, W)
            table.update(chestxray8_boxes(maps), batch["boxes"], batch["finding"])
        print(table.to_markdown())
    """

    def __init__(self, *, criterion: Criterion = "iobb",
                 thresholds: Sequence[float] = CHESTXRAY8_THRESHOLDS) -> None:
        check_choice(criterion, ("iou", "iobb"), "criterion")
        self.criterion = criterion
        self.thresholds = tuple(float(t) for t in thresholds)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        n = len(self.thresholds)
        self._found: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(n, dtype=np.int64))
        self._false: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(n, dtype=np.int64))
        self._boxes: dict[str, int] = defaultdict(int)
        self._images: dict[str, int] = defaultdict(int)

    def update(self, pred_boxes: Sequence[Any], gt_boxes: Any, findings: Sequence[Any]) -> None:
        """Add entries: per entry predicted boxes ``(n_i, 4)``, ground-truth boxes ``(m_i, 4)``, finding name."""
        findings = [str(f) for f in findings]
        if len(pred_boxes) != len(findings):
            raise ShapeError(f"{len(pred_boxes)} predicted box sets for {len(findings)} findings")
        gts = as_box_lists(gt_boxes, len(findings), "gt_boxes")
        preds = as_box_lists(list(pred_boxes), len(findings), "pred_boxes", allow_empty=True)
        for p, g, name in zip(preds, gts, findings):
            found, false_pos = match_boxes(torch.from_numpy(p), torch.from_numpy(g), criterion=self.criterion,
                                           thresholds=self.thresholds)
            self._found[name] += found.sum(0).numpy()
            self._false[name] += false_pos.numpy()
            self._boxes[name] += len(g)
            self._images[name] += 1

    def compute(self) -> dict[str, dict[str, Any]]:
        """``{finding: {"acc": {T: value}, "afp": {T: value}, "boxes": n, "images": n}}``, plus ``"all"``."""
        out: dict[str, dict[str, Any]] = {}
        names = sorted(self._boxes)
        for name in names + (["all"] if names else []):
            keys = names if name == "all" else [name]
            found = sum(self._found[k] for k in keys)
            false = sum(self._false[k] for k in keys)
            boxes = sum(self._boxes[k] for k in keys)
            images = sum(self._images[k] for k in keys)
            out[name] = {"acc": {t: float(f) / boxes for t, f in zip(self.thresholds, found)},
                         "afp": {t: float(f) / images for t, f in zip(self.thresholds, false)},
                         "boxes": boxes, "images": images}
        return out

    def to_markdown(self, digits: int = 4) -> str:
        """The paper's table layout: rows ``T Acc.`` / ``T AFP``, one column per finding."""
        result = self.compute()
        names = [n for n in result if n != "all"] + (["all"] if result else [])
        label = "T(IoU)" if self.criterion == "iou" else "T(IoBB)"
        lines = [f"| {label} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for t in self.thresholds:
            for kind, title in (("acc", "Acc."), ("afp", "AFP")):
                cells = " | ".join(f"{result[n][kind][t]:.{digits}f}" for n in names)
                lines.append(f"| {t:g} {title} | {cells} |")
        return "\n".join(lines)
