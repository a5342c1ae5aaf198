"""WSOL box metrics: MaxBoxAcc, MaxBoxAccV2, GT-known Loc and Top-1 Loc.

Definitions from Choe et al., "Evaluating Weakly Supervised Object Localization
Methods Right", CVPR 2020 (arXiv 2001.07437), with the behaviour of their
reference code (clovaai/wsolevaluation, ``evaluation.py``) reproduced exactly:

* each map is min-max normalized in float64 (``normalize_scoremap``) and
  quantized to ``u = uint8(255 * map)``;
* thresholds ``tau`` sweep ``np.arange(0, 1, interval)``; at ``tau`` the
  foreground is ``u > int(tau * max(u))`` (strict, OpenCV ``THRESH_BINARY``),
  so ``tau`` is relative to the map's maximum;
* boxes come from OpenCV contours (``findContours(RETR_TREE)``): one box per
  8-connected foreground component *and one per hole* (a 4-connected
  background region that does not reach the image border; its contour box is
  the hole's box grown by one pixel on each side). ``mode="all"``
  (MaxBoxAccV2) keeps every box; ``mode="largest"`` (MaxBoxAcc) keeps the
  contour with the largest ``cv2.contourArea`` - the polygon area through the
  boundary pixel centres, not the pixel count - ties going to the contour
  OpenCV lists first (the top-level component whose first pixel comes last in
  raster order). A box is ``(x, y, min(x + w, W - 1), min(y + h, H - 1))``
  from ``cv2.boundingRect``; with no foreground it is ``(0, 0, 0, 0)``;
* IoU (``convention="wsol"``) counts both boxes' pixels inclusively
  (``area = (x1 - x0 + 1) * (y1 - y0 + 1)``) and is 0 for a non-positive
  union; an image scores the best IoU over all (predicted, ground-truth) box
  pairs, and is correct at ``delta`` when ``IoU >= delta``;
* ``BoxAcc(tau, delta)`` is the percentage of correct images, ``MaxBoxAcc`` its
  maximum over ``tau``; MaxBoxAccV2 averages ``delta`` in {0.3, 0.5, 0.7}.

``convention="exclusive"`` keeps the same contours but measures them as medcam
boxes (exclusive ``x1``/``y1``, no clipping, no box when nothing is above the
threshold). All thresholds are served by one component-tree pass per map
(:mod:`medcam.metrics.component_tree`), not one labelling per threshold.
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ..params import check_choice
from ..progress import show_bar
from ._inputs import (as_box_lists, as_maps, cam_thresholds, check_unit_maps, normalize_maps,
                      pad_boxes, quantize)
from .component_tree import component_tree, contour_area_events, touch_levels

__all__ = ["box_iou_curves", "max_box_acc", "max_box_acc_v2", "gt_known_loc", "top1_loc", "wsol_boxes",
           "accuracy_curve", "summarize", "prepare_maps", "threshold_levels", "BOX_MODES", "CONVENTIONS"]

BoxMode = Literal["all", "largest"]
Convention = Literal["wsol", "exclusive"]
BOX_MODES: tuple[str, ...] = ("all", "largest")
CONVENTIONS: tuple[str, ...] = ("wsol", "exclusive")
_LEVELS = 256  # uint8 levels; every threshold level lies in [0, 254]
_CHUNK_PIXELS = 1_600_000  # pixels per component-tree pass (32 maps of 224 x 224; keeps arrays near the caches)


def prepare_maps(maps: Any, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Maps as the reference scores them.

    Args:
        maps: ``(B, H, W)`` maps (torch or NumPy); raw if ``normalize``, else in [0, 1].
        normalize: min-max normalize each map first (the paper's protocol).

    Returns:
        ``(scores, levels)``: float64 ``(B, H, W)`` maps in [0, 1] and their
        uint8 quantization ``uint8(255 * scores)``.
    """
    scores = normalize_maps(maps) if normalize else as_maps(maps)
    if not normalize:
        check_unit_maps(scores)
    return scores, quantize(scores)


def threshold_levels(levels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Integer threshold of each map at each ``tau``: ``int(tau * max(u))``, ``(B, T)`` int64."""
    peak = levels.reshape(len(levels), -1).max(axis=1).astype(np.float64) if levels.size else np.zeros(len(levels))
    return (np.asarray(thresholds, dtype=np.float64)[None, :] * peak[:, None]).astype(np.int64)


def _pair_iou(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, convention: str) -> np.ndarray:
    """Best IoU of each predicted box ``(K, 4)`` over its ground truths ``(K, G, 4)`` -> ``(K,)``."""
    p = pred[:, None, :]
    one = 1.0 if convention == "wsol" else 0.0
    iw = np.maximum(0.0, np.minimum(p[..., 2], gt[..., 2]) - np.maximum(p[..., 0], gt[..., 0]) + one)
    ih = np.maximum(0.0, np.minimum(p[..., 3], gt[..., 3]) - np.maximum(p[..., 1], gt[..., 1]) + one)
    inter = iw * ih
    area_p = (p[..., 2] - p[..., 0] + one) * (p[..., 3] - p[..., 1] + one)
    area_g = (gt[..., 2] - gt[..., 0] + one) * (gt[..., 3] - gt[..., 1] + one)
    union = area_p + area_g - inter
    degenerate = union <= 0
    iou = inter / np.where(degenerate, 1.0, union)
    iou[degenerate] = 0.0
    iou[~valid] = -np.inf
    return iou.max(axis=1) if iou.shape[1] else np.full(len(iou), -np.inf)


def _boxes(x0, y0, x1, y1, grow: int, size: tuple[int, int], convention: str) -> np.ndarray:
    """Contour boxes from inclusive pixel extents, as the convention measures them."""
    h, w = size
    x0, y0 = x0 - grow, y0 - grow
    x1, y1 = x1 + 1 + grow, y1 + 1 + grow  # boundingRect: x + w (exclusive end)
    if convention == "wsol":
        x1, y1 = np.minimum(x1, w - 1), np.minimum(y1, h - 1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float64)


def _interval_max(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray, n_rows: int,
                  fill: float | int) -> np.ndarray:
    """``out[r, t] = max(values[k] for k with rows[k] == r and lo[k] <= t < hi[k])``, ``(n_rows, 256)``.

    Each interval is split into at most 16 aligned blocks of a segment tree
    over the 256 levels, then block maxima are pushed down to the leaves.
    """
    size = _LEVELS
    tree = np.full((n_rows, 2 * size), fill, dtype=values.dtype)
    lo = np.clip(lo, 0, size) + size
    hi = np.clip(hi, 0, size) + size
    active = lo < hi
    rows, lo, hi, values = rows[active], lo[active], hi[active], values[active]
    while len(lo):
        odd = (lo & 1) == 1
        np.maximum.at(tree, (rows[odd], lo[odd]), values[odd])
        lo = lo + odd
        odd = (hi & 1) == 1
        hi = hi - odd
        np.maximum.at(tree, (rows[odd], hi[odd]), values[odd])
        lo, hi = lo >> 1, hi >> 1
        keep = lo < hi
        rows, lo, hi, values = rows[keep], lo[keep], hi[keep], values[keep]
    width = 1
    while width < size:
        parents = tree[:, width:2 * width]
        children = tree[:, 2 * width:4 * width]
        np.maximum(children, np.repeat(parents, 2, axis=1), out=children)
        width *= 2
    return tree[:, size:]


def _tables(ranks: np.ndarray, n_levels: int, gt: np.ndarray, valid: np.ndarray, modes: Sequence[str],
            convention: str) -> dict[str, np.ndarray]:
    """Best IoU at every evaluated threshold: ``{mode: (B, 256)}`` float64.

    ``ranks`` ``(B, H, W)`` holds each pixel's level among the ``n_levels``
    evaluated integer thresholds ``s_0 < s_1 < ...``: the number of ``s_k``
    below the pixel's 8-bit value, so that ``u > s_k`` exactly where
    ``ranks > k``. Entry ``[b, k]`` is the best IoU of the boxes found in
    ``u > s_k`` (NaN when there is no foreground).
    """
    b, h, w = ranks.shape
    top = n_levels  # ranks lie in [0, n_levels]
    out = {m: np.full((b, _LEVELS), np.nan) for m in modes}
    if b == 0:
        return out
    bg = component_tree(top - ranks, connectivity=4)  # background {ranks <= k} at level top - k
    if "all" in modes:
        fg = component_tree(ranks, connectivity=8)  # foreground {ranks >= k + 1}
        iou_fg = _pair_iou(_boxes(fg.x0, fg.y0, fg.x1, fg.y1, 0, (h, w), convention), gt[fg.image], valid[fg.image],
                           convention)
        table = _interval_max(fg.image, np.maximum(fg.death, 0), fg.birth, iou_fg, b, -np.inf)
        holes = np.flatnonzero(~bg.border)
        if len(holes):
            hb = _boxes(bg.x0[holes], bg.y0[holes], bg.x1[holes], bg.y1[holes], 1, (h, w), convention)
            iou_h = _pair_iou(hb, gt[bg.image[holes]], valid[bg.image[holes]], convention)
            table = np.maximum(table, _interval_max(bg.image[holes], top - bg.birth[holes], top - bg.death[holes],
                                                    iou_h, b, -np.inf))
        out["all"] = np.where(np.isneginf(table), np.nan, table)
    if "largest" in modes:
        # pixels enclosed at threshold k (foreground or holes) are those with filled > k
        filled = (top - touch_levels(bg)).reshape(b, h, w)
        ft = component_tree(filled, connectivity=8)
        if len(ft):
            area2 = contour_area_events(ft, filled)
            order = np.lexsort((ft.first, area2))  # ascending (area, first pixel): the last wins
            rank = np.empty(len(ft), dtype=np.int64)
            rank[order] = np.arange(len(ft))
            best = _interval_max(ft.image, np.maximum(ft.death, 0), ft.birth, rank, b, -1)
            iou_n = _pair_iou(_boxes(ft.x0, ft.y0, ft.x1, ft.y1, 0, (h, w), convention), gt[ft.image],
                              valid[ft.image], convention)
            out["largest"] = np.where(best >= 0, iou_n[order[np.maximum(best, 0)]], np.nan)
    return out


def _empty_iou(gt: np.ndarray, valid: np.ndarray, convention: str) -> np.ndarray:
    """Best IoU of the prediction made when nothing is above the threshold, per image ``(B,)``."""
    if convention == "exclusive":
        return np.zeros(len(gt))
    zero = np.zeros((len(gt), 4))
    return _pair_iou(zero, gt, valid, convention)


def box_iou_curves(maps: Any, boxes: Any, *, interval: float = 0.01, thresholds: Sequence[float] | None = None,
                   mode: BoxMode = "all", normalize: bool = True, convention: Convention = "wsol",
                   progress: bool = False) -> np.ndarray:
    """Best box IoU of each image at each CAM threshold.

    Args:
        maps: ``(B, H, W)`` maps for the ground-truth class (torch or NumPy).
        boxes: ground-truth boxes ``(x0, y0, x1, y1)`` in map pixels: a list of
            ``(m_i, 4)`` (at least one box per image), a ``(B, 4)`` or ``(B, M, 4)``.
            Integer coordinates give the reference's numbers exactly.
        interval: threshold step of the sweep ``np.arange(0, 1, interval)``.
        thresholds: explicit thresholds in [0, 1) instead of the sweep.
        mode: ``"all"`` contours (MaxBoxAccV2) or the ``"largest"`` (MaxBoxAcc).
        normalize: min-max normalize each map first (else maps must be in [0, 1]).
        convention: ``"wsol"`` (reference: inclusive areas, clipped boxes) or
            ``"exclusive"`` (medcam boxes); see the module docstring.
        progress: show a progress bar over chunks of images.

    Returns:
        ``(B, T)`` float64 best IoU per image and threshold.
    """
    check_choice(mode, BOX_MODES, "box mode")
    check_choice(convention, CONVENTIONS, "box convention")
    taus = cam_thresholds(interval) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if taus.ndim != 1 or ((taus < 0) | (taus >= 1)).any():
        raise ValueError("thresholds must be a 1-D sequence of values in [0, 1)")
    _, levels = prepare_maps(maps, normalize)
    gt, valid = pad_boxes(as_box_lists(boxes, len(levels), "boxes"))
    return _curves(levels, gt, valid, taus, (mode,), convention, progress)[mode]


def _curves(levels: np.ndarray, gt: np.ndarray, valid: np.ndarray, taus: np.ndarray, modes: Sequence[str],
            convention: str, progress: bool = False) -> dict[str, np.ndarray]:
    """``{mode: (B, T)}`` best IoU per image and threshold, computed in chunks of images."""
    from tqdm.auto import tqdm

    t = threshold_levels(levels, taus)
    empty = _empty_iou(gt, valid, convention)
    out = {m: np.empty((len(levels), len(taus))) for m in modes}
    chunk = max(1, _CHUNK_PIXELS // max(1, levels[0].size if len(levels) else 1))
    starts = range(0, len(levels), chunk)
    for s in tqdm(starts, desc="box curves", unit="chunk", disable=not show_bar(progress) or len(starts) < 2):
        sl = slice(s, s + chunk)
        # only the evaluated thresholds matter: sweep their levels, not all 256
        steps = np.unique(t[sl])
        ranks = np.searchsorted(steps, np.arange(_LEVELS), side="left").astype(np.int32)[levels[sl]]
        tables = _tables(ranks, len(steps), gt[sl], valid[sl], modes, convention)
        k = np.searchsorted(steps, t[sl])
        for m in modes:
            picked = np.take_along_axis(tables[m], k, axis=1)
            out[m][sl] = np.where(np.isnan(picked), empty[sl, None], picked)
    return out


def accuracy_curve(ious: np.ndarray, delta: float) -> np.ndarray:
    """``BoxAcc(tau, delta)`` in percent from ``(B, T)`` best IoUs, as the reference counts it."""
    correct = (ious >= delta).sum(axis=0).astype(np.float64)
    return correct * 100. / float(len(ious))


def max_box_acc(maps: Any, boxes: Any, *, iou_thresholds: Sequence[float] = (0.5,), mode: BoxMode = "largest",
                interval: float = 0.01, normalize: bool = True, convention: Convention = "wsol",
                progress: bool = False) -> dict[str, Any]:
    """MaxBoxAcc (Choe et al., CVPR 2020): the best box accuracy over CAM thresholds.

    ``BoxAcc(tau, delta) = 100/N sum_n 1[max IoU(box_n(tau), B_n) >= delta]`` and
    ``MaxBoxAcc(delta) = max_tau BoxAcc(tau, delta)``. The defaults give the
    CVPR version (``delta = 0.5``, largest contour); :func:`max_box_acc_v2`
    gives MaxBoxAccV2. Arguments as :func:`box_iou_curves`.

    Returns:
        a dict: ``"value"`` the mean of MaxBoxAcc over ``iou_thresholds`` (percent),
        ``"per_iou"`` ``{delta: MaxBoxAcc(delta)}``, ``"best_threshold"``
        ``{delta: tau}`` (the first maximizing threshold), ``"curves"``
        ``{delta: (T,) BoxAcc}``, ``"thresholds"`` ``(T,)``, ``"ious"`` ``(B, T)``.
    """
    deltas = [float(d) for d in iou_thresholds]
    if not deltas or any(not 0 <= d <= 1 for d in deltas):
        raise ValueError(f"iou_thresholds must be values in [0, 1], got {list(iou_thresholds)}")
    taus = cam_thresholds(interval)
    ious = box_iou_curves(maps, boxes, interval=interval, mode=mode, normalize=normalize, convention=convention,
                          progress=progress)
    return summarize(ious, taus, deltas)


def summarize(ious: np.ndarray, taus: np.ndarray, deltas: Sequence[float]) -> dict[str, Any]:
    """MaxBoxAcc results from ``(B, T)`` best IoUs (see :func:`max_box_acc`)."""
    curves = {d: accuracy_curve(ious, d) for d in deltas}
    per = {d: float(c.max()) for d, c in curves.items()}
    return {"value": float(np.average([per[d] for d in deltas])), "per_iou": per,
            "best_threshold": {d: float(taus[int(np.argmax(c))]) for d, c in curves.items()},
            "curves": curves, "thresholds": taus, "ious": ious}


def max_box_acc_v2(maps: Any, boxes: Any, *, interval: float = 0.01, normalize: bool = True,
                   convention: Convention = "wsol", progress: bool = False) -> dict[str, Any]:
    """MaxBoxAccV2 (Choe et al., CVPR 2020 / TPAMI 2022): mean MaxBoxAcc over delta 0.3/0.5/0.7, all contours.

    Same result dict as :func:`max_box_acc` (``"value"`` is MaxBoxAccV2, percent).
    """
    return max_box_acc(maps, boxes, iou_thresholds=(0.3, 0.5, 0.7), mode="all", interval=interval,
                       normalize=normalize, convention=convention, progress=progress)


def gt_known_loc(maps: Any, boxes: Any, *, threshold: float | None = None, iou_threshold: float = 0.5,
                 mode: BoxMode = "largest", interval: float = 0.01, normalize: bool = True,
                 convention: Convention = "wsol") -> float:
    """GT-known Loc: percent of images whose ground-truth-class map gives a box with IoU >= 0.5.

    Args:
        maps: ``(B, H, W)`` maps computed for each image's ground-truth class.
        threshold: a fixed CAM threshold ``tau`` (the classic protocol, e.g. 0.2),
            or ``None`` for the best threshold of the sweep (then it equals
            MaxBoxAcc, as in Choe et al.).
        Other arguments as :func:`box_iou_curves`.
    """
    if threshold is None:
        return max_box_acc(maps, boxes, iou_thresholds=(iou_threshold,), mode=mode, interval=interval,
                           normalize=normalize, convention=convention)["value"]
    ious = box_iou_curves(maps, boxes, thresholds=[threshold], mode=mode, normalize=normalize, convention=convention)
    return float(accuracy_curve(ious, iou_threshold)[0])


def top1_loc(maps: Any, boxes: Any, correct: Any, *, threshold: float | None = None, iou_threshold: float = 0.5,
             mode: BoxMode = "largest", interval: float = 0.01, normalize: bool = True,
             convention: Convention = "wsol") -> float:
    """Top-1 Loc: percent of images both classified correctly (top-1) and localized (IoU >= 0.5).

    Args:
        maps: ``(B, H, W)`` maps for the ground-truth class (the box is the same
            whichever class is predicted when the prediction is right).
        correct: ``(B,)`` bool, whether each image's top-1 prediction is right.
        threshold: a fixed ``tau``, or ``None`` for the threshold that maximizes
            GT-known Loc over the sweep (Top-1 Loc is read at that operating point).
        Other arguments as :func:`box_iou_curves`.
    """
    ok = np.asarray(correct.detach().cpu() if hasattr(correct, "detach") else correct).astype(bool).reshape(-1)
    taus = cam_thresholds(interval) if threshold is None else np.array([threshold], dtype=np.float64)
    ious = box_iou_curves(maps, boxes, thresholds=taus, mode=mode, normalize=normalize, convention=convention)
    if len(ok) != len(ious):
        from ..errors import ShapeError

        raise ShapeError(f"correct has {len(ok)} entries for {len(ious)} maps")
    best = int(np.argmax(accuracy_curve(ious, iou_threshold)))
    hit = (ious[:, best] >= iou_threshold) & ok
    return float(hit.sum() * 100. / float(len(ious)))


def wsol_boxes(maps: Any, threshold: float, *, mode: BoxMode = "all", normalize: bool = True) -> list[Tensor]:
    """The boxes the WSOL reference draws from each map at one CAM threshold.

    Args:
        maps: ``(B, H, W)`` maps.
        threshold: ``tau`` in [0, 1); the foreground is ``u > int(tau * max(u))``.
        mode: ``"all"`` contour boxes (components, then holes) or the ``"largest"`` contour.
        normalize: min-max normalize each map first.

    Returns:
        one ``(n_b, 4)`` float tensor per image, ``(x0, y0, x1, y1)`` with
        exclusive ``x1``/``y1`` and no clipping (``n_b`` is 0 without foreground).
    """
    check_choice(mode, BOX_MODES, "box mode")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    _, levels = prepare_maps(maps, normalize)
    b, h, w = levels.shape
    t = threshold_levels(levels, np.array([threshold]))[:, 0]
    found: list[list[np.ndarray]] = [[] for _ in range(b)]
    if mode == "all":
        fg = component_tree(levels, connectivity=8)
        alive = (np.maximum(fg.death, 0) <= t[fg.image]) & (t[fg.image] < fg.birth)
        boxes = _boxes(fg.x0, fg.y0, fg.x1, fg.y1, 0, (h, w), "exclusive")
        bg = component_tree(255 - levels.astype(np.int64), connectivity=4)
        hole = ~bg.border & (255 - bg.birth <= t[bg.image]) & (t[bg.image] < 255 - bg.death)
        hole_boxes = _boxes(bg.x0, bg.y0, bg.x1, bg.y1, 1, (h, w), "exclusive")
        for k in np.flatnonzero(alive)[np.argsort(fg.first[alive], kind="stable")]:
            found[fg.image[k]].append(boxes[k])
        for k in np.flatnonzero(hole)[np.argsort(bg.first[hole], kind="stable")]:
            found[bg.image[k]].append(hole_boxes[k])
    else:
        bg = component_tree(255 - levels.astype(np.int64), connectivity=4)
        filled = (255 - touch_levels(bg)).reshape(b, h, w)
        ft = component_tree(filled, connectivity=8)
        area2 = contour_area_events(ft, filled)
        alive = np.flatnonzero((np.maximum(ft.death, 0) <= t[ft.image]) & (t[ft.image] < ft.birth))
        boxes = _boxes(ft.x0, ft.y0, ft.x1, ft.y1, 0, (h, w), "exclusive")
        for i in range(b):
            mine = alive[ft.image[alive] == i]
            if len(mine):
                k = mine[np.lexsort((ft.first[mine], area2[mine]))[-1]]
                found[i].append(boxes[k])
    return [torch.tensor(np.array(f, dtype=np.float32).reshape(-1, 4)) for f in found]
