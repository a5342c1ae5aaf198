"""MaxBoxAcc / MaxBoxAccV2 / GT-known / Top-1 Loc: hand-computed cases and a per-threshold OpenCV loop.

The loop below is a straightforward re-statement of the wsolevaluation
reference (Choe et al., CVPR 2020): per map and per threshold, cv2.threshold
at ``int(tau * max(u))``, cv2.findContours(RETR_TREE), boundingRect boxes
clipped to ``W - 1`` / ``H - 1``, the largest by cv2.contourArea for
MaxBoxAcc, and the inclusive (+1) IoU. medcam must give the same numbers exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.errors import DataError, ShapeError
from medcam.metrics import (box_iou_curves, gt_known_loc, max_box_acc, max_box_acc_v2, normalize_maps, top1_loc,
                            wsol_boxes)

cv2 = pytest.importorskip("cv2")


# --- the per-threshold reference loop ---------------------------------------------------------------

def _contour_boxes(score: np.ndarray, tau: float, largest: bool) -> list[tuple[int, int, int, int]]:
    """Unclipped (x, y, x + w, y + h) of the contours at one threshold (OpenCV's order)."""
    u = (score * 255).astype(np.uint8)
    _, binary = cv2.threshold(u, int(tau * np.max(u)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if largest and len(contours):
        contours = [max(contours, key=cv2.contourArea)]
    return [(x, y, x + w, y + h) for x, y, w, h in map(cv2.boundingRect, contours)]


def _iou(box, gt, inclusive: bool) -> float:
    one = 1 if inclusive else 0
    iw = max(0, min(box[2], gt[2]) - max(box[0], gt[0]) + one)
    ih = max(0, min(box[3], gt[3]) - max(box[1], gt[1]) + one)
    inter = iw * ih
    union = (box[2] - box[0] + one) * (box[3] - box[1] + one) + (gt[2] - gt[0] + one) * (gt[3] - gt[1] + one) - inter
    return inter / union if union > 0 else 0.0


def reference_curves(scores, gts, taus, largest: bool, convention: str = "wsol") -> np.ndarray:
    out = np.zeros((len(scores), len(taus)))
    for i, (s, g) in enumerate(zip(scores, gts)):
        h, w = s.shape
        for j, tau in enumerate(taus):
            boxes = _contour_boxes(s, tau, largest)
            if convention == "wsol":
                boxes = [(x0, y0, min(x1, w - 1), min(y1, h - 1)) for x0, y0, x1, y1 in boxes] or [(0, 0, 0, 0)]
            out[i, j] = max([_iou(b, gt, convention == "wsol") for b in boxes for gt in g] or [0.0])
    return out


def reference_max_box_acc(ious: np.ndarray, deltas) -> float:
    per = []
    for d in deltas:
        correct = np.zeros(ious.shape[1])
        for row in ious:
            correct[np.where(row >= d)[0]] += 1
        per.append((correct * 100. / float(len(ious))).max())
    return float(np.average(per))


def _maps(rng: np.random.Generator, kind: str, n: int, h: int, w: int) -> np.ndarray:
    if kind == "noise":
        return rng.random((n, h, w))
    if kind == "plateaus":  # few levels: large flat regions, holes and ties everywhere
        return rng.integers(0, 4, (n, h, w)).astype(float)
    small = rng.random((n, max(2, h // 5), max(2, w // 5)))
    return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_CUBIC) for m in small])


def _gt_boxes(rng: np.random.Generator, n: int, h: int, w: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        x0, y0 = rng.integers(0, w, k), rng.integers(0, h, k)
        out.append(np.stack([x0, y0, np.minimum(x0 + rng.integers(1, w + 1, k), w),
                             np.minimum(y0 + rng.integers(1, h + 1, k), h)], axis=1))
    return out


# --- random maps: the same numbers as the loop ------------------------------------------------------

@pytest.mark.parametrize("kind", ["smooth", "noise", "plateaus"])
@pytest.mark.parametrize("mode", ["all", "largest"])
def test_curves_equal_the_opencv_loop(kind, mode):
    rng = np.random.default_rng({"smooth": 0, "noise": 1, "plateaus": 2}[kind])
    taus = np.arange(0, 1, 0.01)
    for _ in range(4):
        h, w = (int(v) for v in rng.integers(2, 40, 2))
        maps = _maps(rng, kind, 5, h, w)
        gts = _gt_boxes(rng, 5, h, w)
        ref = reference_curves(normalize_maps(maps), gts, taus, largest=mode == "largest")
        got = box_iou_curves(torch.from_numpy(maps).float() if kind == "noise" else maps, gts, mode=mode)
        if kind == "noise":  # float32 maps: the reference sees them cast to float64, as t2n does
            ref = reference_curves(normalize_maps(torch.from_numpy(maps).float()), gts, taus, mode == "largest")
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("mode", ["all", "largest"])
def test_thousand_thresholds_and_metrics_equal_the_loop(mode):
    rng = np.random.default_rng(3)
    maps = np.concatenate([_maps(rng, "smooth", 4, 32, 28), _maps(rng, "plateaus", 2, 32, 28)])
    gts = _gt_boxes(rng, 6, 32, 28)
    taus = np.arange(0, 1, 0.001)
    ref = reference_curves(normalize_maps(maps), gts, taus, largest=mode == "largest")
    np.testing.assert_array_equal(box_iou_curves(maps, gts, interval=0.001, mode=mode), ref)
    deltas = (0.3, 0.5, 0.7) if mode == "all" else (0.5,)
    result = max_box_acc(maps, gts, iou_thresholds=deltas, mode=mode, interval=0.001)
    assert result["value"] == reference_max_box_acc(ref, deltas)


def test_exclusive_convention_equals_the_loop():
    rng = np.random.default_rng(4)
    maps, gts = _maps(rng, "smooth", 5, 24, 30), _gt_boxes(rng, 5, 24, 30)
    taus = np.arange(0, 1, 0.01)
    for mode in ("all", "largest"):
        ref = reference_curves(normalize_maps(maps), gts, taus, mode == "largest", convention="exclusive")
        np.testing.assert_array_equal(box_iou_curves(maps, gts, mode=mode, convention="exclusive"), ref)


def test_boxes_at_one_threshold_equal_opencv():
    rng = np.random.default_rng(5)
    maps = np.concatenate([_maps(rng, "smooth", 3, 30, 30), _maps(rng, "plateaus", 3, 30, 30)])
    for tau in (0.0, 0.25, 0.5, 0.9):
        for mode in ("all", "largest"):
            got = wsol_boxes(maps, tau, mode=mode)
            for s, boxes in zip(normalize_maps(maps), got):
                ref = _contour_boxes(s, tau, largest=mode == "largest")
                assert sorted(tuple(int(v) for v in b) for b in boxes.tolist()) == sorted(ref)


# --- hand-computed cases -----------------------------------------------------------------------------

def test_inclusive_areas_and_clipping_by_hand():
    s = np.zeros((1, 6, 6))
    s[0, 1:3, 1:4] = 1.0  # rows 1-2, columns 1-3: boundingRect (1, 1, 4, 3)
    # the reference's box is one pixel wider and taller than the component: IoU with its exact box is 6/12
    assert box_iou_curves(s, [[[1, 1, 3, 2]]], thresholds=[0.5])[0, 0] == 0.5
    assert box_iou_curves(s, [[[1, 1, 4, 3]]], thresholds=[0.5])[0, 0] == 1.0
    assert box_iou_curves(s, [[[1, 1, 4, 3]]], thresholds=[0.5], convention="exclusive")[0, 0] == 1.0
    # a component at the right edge: x + w = 6 is clipped to W - 1 = 5
    s = np.zeros((1, 6, 6))
    s[0, 0:2, 4:6] = 1.0
    assert box_iou_curves(s, [[[4, 0, 5, 2]]], thresholds=[0.5])[0, 0] == 1.0


def test_hole_contours_count_in_v2_only():
    s = np.zeros((1, 9, 9))
    s[0, 1:8, 1:8] = 1.0
    s[0, 3:6, 3:6] = 0.0  # a ring of width 2 around a 3x3 hole
    gt = [[[3, 3, 6, 6]]]  # the hole itself
    # outer box (1, 1, 8, 8): 16 / 64; hole contour box (2, 2, 7, 7): 16 / 36
    assert box_iou_curves(s, gt, thresholds=[0.5], mode="all")[0, 0] == 16 / 36
    assert box_iou_curves(s, gt, thresholds=[0.5], mode="largest")[0, 0] == 16 / 64
    assert [b.tolist() for b in wsol_boxes(s, 0.5)] == [[[1, 1, 8, 8], [2, 2, 7, 7]]]


def test_largest_is_by_contour_area_not_pixel_count():
    s = np.zeros((1, 8, 10))
    s[0, 0, 0:9] = 1.0  # 9 pixels on a line: contour area 0
    s[0, 4:6, 4:6] = 1.0  # 4 pixels in a square: contour area 1
    assert wsol_boxes(s, 0.5, mode="largest")[0].tolist() == [[4, 4, 6, 6]]
    assert box_iou_curves(s, [[[4, 4, 6, 6]]], thresholds=[0.5], mode="largest")[0, 0] == 1.0


def test_equal_contour_areas_go_to_the_last_in_raster_order():
    s = np.zeros((1, 8, 8))
    s[0, 0:2, 0:2] = 1.0
    s[0, 5:7, 4:6] = 1.0
    assert wsol_boxes(s, 0.5, mode="largest")[0].tolist() == [[4, 5, 6, 7]]


def test_threshold_is_strict_and_relative_to_the_map_maximum():
    s = np.array([[[0.5, 0.35, 0.2]]])  # u = 127, 89, 51; not normalized
    assert wsol_boxes(s, 0.6, normalize=False)[0].tolist() == [[0, 0, 2, 1]]  # t = int(0.6 * 127) = 76
    assert wsol_boxes(s, 0.701, normalize=False)[0].tolist() == [[0, 0, 1, 1]]  # t = 89: 89 is not above it


def test_constant_map_gives_the_empty_box():
    # normalize_scoremap turns a constant map into zeros: no contour, box (0, 0, 0, 0)
    iou = box_iou_curves(np.full((1, 5, 5), 0.3), [[[0, 0, 1, 1]]], thresholds=[0.0, 0.5])
    assert iou.tolist() == [[0.25, 0.25]]  # inclusive: 1 / (1 + 4 - 1)
    assert box_iou_curves(np.full((1, 5, 5), 0.3), [[[0, 0, 1, 1]]], thresholds=[0.5],
                          convention="exclusive").tolist() == [[0.0]]


def test_max_box_acc_results_by_hand():
    s = np.zeros((2, 10, 10))
    s[0, 2:6, 2:6] = np.linspace(0.2, 1.0, 16).reshape(4, 4)
    s[1, 6:9, 6:9] = 1.0
    gts = [[[2, 2, 5, 5]], [[0, 0, 2, 2]]]  # image 1 is never localized
    result = max_box_acc(s, gts, interval=0.01)
    assert result["value"] == 50.0 and result["per_iou"] == {0.5: 50.0}
    assert result["curves"][0.5].shape == (100,) and result["ious"].shape == (2, 100)
    assert result["best_threshold"][0.5] == 0.0
    v2 = max_box_acc_v2(s, gts)
    assert v2["value"] == pytest.approx(np.mean(list(v2["per_iou"].values())))
    assert set(v2["per_iou"]) == {0.3, 0.5, 0.7}


def test_gt_known_and_top1_loc():
    s = np.zeros((4, 10, 10))
    for i in range(4):
        s[i, 2:6, 2:6] = 1.0
    gts = [[[2, 2, 5, 5]]] * 3 + [[[7, 7, 9, 9]]]
    assert gt_known_loc(s, gts) == 75.0
    assert gt_known_loc(s, gts, threshold=0.2) == 75.0
    assert top1_loc(s, gts, torch.tensor([True, False, True, True])) == 50.0
    assert top1_loc(s, gts, [True, True, True, True], threshold=0.3) == 75.0


def test_bad_input():
    with pytest.raises(ShapeError, match="select one class map"):
        max_box_acc(np.zeros((2, 3, 8, 8)), [[[0, 0, 1, 1]]] * 2)
    with pytest.raises(DataError, match="at least one ground-truth box"):
        max_box_acc(np.random.rand(2, 8, 8), [[[0, 0, 1, 1]], np.zeros((0, 4))])
    with pytest.raises(ShapeError, match="entries for 2 maps"):
        max_box_acc(np.random.rand(2, 8, 8), [[[0, 0, 1, 1]]])
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        max_box_acc(np.full((1, 4, 4), 2.0), [[[0, 0, 1, 1]]], normalize=False)
    with pytest.raises(ValueError, match="did you mean 'largest'"):
        max_box_acc(np.random.rand(1, 4, 4), [[[0, 0, 1, 1]]], mode="larget")
    with pytest.raises(ValueError, match="interval"):
        max_box_acc(np.random.rand(1, 4, 4), [[[0, 0, 1, 1]]], interval=0)
    with pytest.raises(DataError, match="x1 < x0"):
        max_box_acc(np.random.rand(1, 4, 4), [[[3, 0, 1, 1]]])
