"""Streaming localization evaluation: feed batches of maps, read every WSOL metric at the end."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError
from ..params import check_choice
from ._inputs import as_box_lists, cam_thresholds, pad_boxes
from .pxap import pixel_iou_curves, pxap_from_histograms, pxap_histograms
from .wsol import BOX_MODES, CONVENTIONS, _curves, prepare_maps

__all__ = ["LocalizationAccumulator"]


class LocalizationAccumulator:
    """Accumulate box and mask localization over a data loader, batch by batch.

    Only counts per threshold are kept (no maps), so memory does not grow with
    the data set, and the result equals the one-shot functions on all maps at once.

    Args:
        interval: CAM threshold step (``np.arange(0, 1, interval)``; 0.01 or 0.001).
        iou_thresholds: the ``delta`` values of box accuracy.
        box_modes: ``"all"`` contours (MaxBoxAccV2) and/or the ``"largest"`` (MaxBoxAcc).
        normalize: min-max normalize each map (the WSOL protocol).
        convention: ``"wsol"`` (reference numbers) or ``"exclusive"`` box geometry.
        ignore_value: integer mask value left out of PxAP.
        progress: show progress bars inside large batches.

    Example::

        acc = LocalizationAccumulator()
        for batch in loader:
            maps = cam(model, batch["image"], batch["label"])              # (B, H, W)
            acc.update(maps, boxes=batch["boxes"], masks=batch["mask"],
                       correct=logits.argmax(1) == batch["label"])
        result = acc.compute()   # result["max_box_acc_v2"], result["pxap"], ...
    """

    def __init__(self, *, interval: float = 0.01, iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                 box_modes: Sequence[str] = BOX_MODES, normalize: bool = True, convention: str = "wsol",
                 ignore_value: int | None = 255, progress: bool = False) -> None:
        self.thresholds = cam_thresholds(interval)
        self.interval = interval
        self.deltas = tuple(float(d) for d in iou_thresholds)
        if not self.deltas or any(not 0 <= d <= 1 for d in self.deltas):
            raise ValueError(f"iou_thresholds must be values in [0, 1], got {list(iou_thresholds)}")
        self.box_modes = tuple(box_modes)
        for mode in self.box_modes:
            check_choice(mode, BOX_MODES, "box mode")
        check_choice(convention, CONVENTIONS, "box convention")
        self.normalize, self.convention = normalize, convention
        self.ignore_value, self.progress = ignore_value, progress
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        t, d = len(self.thresholds), len(self.deltas)
        self.n_box_images = 0
        self.n_top1_images = 0
        self.n_mask_images = 0
        self._correct = {m: np.zeros((d, t)) for m in self.box_modes}
        self._top1 = {m: np.zeros((d, t)) for m in self.box_modes}
        self._iou_sum = {m: np.zeros(t) for m in self.box_modes}
        self._pos = np.zeros(t + 2)
        self._neg = np.zeros(t + 2)
        self._pixel_iou_sum = np.zeros(t)

    def update(self, maps: Any, *, boxes: Any = None, masks: Any = None, correct: Any = None) -> None:
        """Add a batch.

        Args:
            maps: ``(B, H, W)`` maps for each image's ground-truth class (torch or NumPy).
            boxes: ground-truth boxes ``(x0, y0, x1, y1)`` in map pixels, one
                ``(m_i, 4)`` (``m_i >= 1``) per image, or a ``(B, 4)`` / ``(B, M, 4)``.
            masks: ``(B, H, W)`` bool masks, or integer 0 / 1 / ``ignore_value``.
            correct: ``(B,)`` bool, whether each image's top-1 class is right
                (for Top-1 Loc; give it with every batch or with none).
        """
        if boxes is None and masks is None:
            raise ValueError("update needs boxes=, masks= or both")
        if boxes is not None:
            _, levels = prepare_maps(maps, self.normalize)
            gt, valid = pad_boxes(as_box_lists(boxes, len(levels), "boxes"))
            ok = None
            if correct is not None:
                if self.n_box_images > self.n_top1_images:
                    raise ValueError("correct= was missing from earlier batches; give it with every batch or none")
                ok = np.asarray(correct.detach().cpu() if hasattr(correct, "detach") else correct).astype(bool)
                if ok.size != len(levels):
                    raise ShapeError(f"correct must be ({len(levels)},), got shape {ok.shape}")
                ok = ok.reshape(-1, 1)
            elif self.n_top1_images:
                raise ValueError("correct= was given with earlier batches; give it with every batch")
            curves = _curves(levels, gt, valid, self.thresholds, self.box_modes, self.convention, self.progress)
            for mode, ious in curves.items():
                for i, delta in enumerate(self.deltas):
                    hit = ious >= delta
                    self._correct[mode][i] += hit.sum(axis=0)
                    if ok is not None:
                        self._top1[mode][i] += (hit & ok).sum(axis=0)
                self._iou_sum[mode] += ious.sum(axis=0)
            self.n_box_images += len(levels)
            if ok is not None:
                self.n_top1_images += len(levels)
        if masks is not None:
            pos, neg = pxap_histograms(maps, masks, interval=self.interval, ignore_value=self.ignore_value,
                                       normalize=self.normalize)
            self._pos += pos
            self._neg += neg
            self._pixel_iou_sum += pixel_iou_curves(maps, masks, interval=self.interval,
                                                    ignore_value=self.ignore_value, normalize=self.normalize).sum(0)
            self.n_mask_images += int(maps.shape[0])

    def compute(self) -> dict[str, Any]:
        """Every metric the accumulated batches support (percentages as in Choe et al.).

        Returns:
            a dict with ``"thresholds"``, ``"n_box_images"``, ``"n_mask_images"``;
            with boxes: ``"box_acc"`` ``{mode: {delta: {"max", "threshold",
            "curve"}}}``, ``"max_box_acc_v2"`` (mode ``"all"``, mean over the
            deltas), ``"max_box_acc"`` and ``"gt_known_loc"`` (mode ``"largest"``,
            delta 0.5, best threshold), ``"top1_loc"`` (at that threshold, when
            ``correct`` was given), ``"mean_box_iou"`` ``{mode: {"max",
            "threshold"}}`` (the mean best IoU at its best threshold); with masks:
            ``"pxap"`` and ``"pixel_iou"`` ``{"max", "threshold"}`` (mean per-image
            IoU of ``{s >= tau}`` at its best threshold). Missing parts are ``None``.
        """
        taus = self.thresholds
        out: dict[str, Any] = {"thresholds": taus, "n_box_images": self.n_box_images,
                               "n_mask_images": self.n_mask_images, "box_acc": None, "max_box_acc_v2": None,
                               "max_box_acc": None, "gt_known_loc": None, "top1_loc": None, "mean_box_iou": None,
                               "pxap": None, "pixel_iou": None}
        n = self.n_box_images
        if n:
            box_acc: dict[str, dict[float, dict[str, Any]]] = {}
            for mode in self.box_modes:
                box_acc[mode] = {}
                for i, delta in enumerate(self.deltas):
                    curve = self._correct[mode][i] * 100. / float(n)
                    best = int(np.argmax(curve))
                    box_acc[mode][delta] = {"max": float(curve.max()), "threshold": float(taus[best]),
                                            "curve": curve}
            out["box_acc"] = box_acc
            if "all" in box_acc:
                out["max_box_acc_v2"] = float(np.average([box_acc["all"][d]["max"] for d in self.deltas]))
            if "largest" in box_acc and 0.5 in box_acc["largest"]:
                out["max_box_acc"] = out["gt_known_loc"] = box_acc["largest"][0.5]["max"]
                if self.n_top1_images:
                    best = int(np.argmax(self._correct["largest"][self.deltas.index(0.5)]))
                    out["top1_loc"] = float(self._top1["largest"][self.deltas.index(0.5)][best] * 100. / float(n))
            out["mean_box_iou"] = {m: {"max": float(s.max() / n), "threshold": float(taus[int(np.argmax(s))])}
                                   for m, s in self._iou_sum.items()}
        if self.n_mask_images:
            out["pxap"] = pxap_from_histograms(self._pos, self._neg)
            mean = self._pixel_iou_sum / self.n_mask_images
            out["pixel_iou"] = {"max": float(mean.max()), "threshold": float(taus[int(np.argmax(mean))])}
        return out
