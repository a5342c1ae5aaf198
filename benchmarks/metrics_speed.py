"""Time medcam's MaxBoxAccV2, MaxBoxAcc and PxAP against the per-threshold reference loop.

The reference is the wsolevaluation procedure (Choe et al., CVPR 2020) restated
here as a straightforward loop: for every map and every threshold,
``cv2.threshold`` + ``cv2.findContours`` + ``cv2.boundingRect`` and the
inclusive IoU (boxes), or per-map ``np.histogram`` of the scores over mask
pixels (PxAP). medcam computes the same numbers from one compiled component-tree
pass per map (boxes; numba, compiled on first use and cached on disk, so one
warm-up call runs before timing and its time is printed) and one vectorized
histogram (PxAP). The last line says whether the goals of issue 19 are met:
MaxBoxAccV2 at least 2x faster than the loop at 100 thresholds and 10x at 1000
(CPU time).

One run, on the same maps, at ``--intervals`` (0.01 = 100 thresholds, 0.001 =
1000 thresholds), prints a table of CPU and wall times, the loop / medcam
ratios, and whether every per-image, per-threshold IoU and every final metric
is identical. Example (the numbers in docs/metrics.md and docs/benchmarks.md)::

    OMP_NUM_THREADS=1 python benchmarks/metrics_speed.py --maps 200 --size 224

The maps are CAM-like: random ``--grid`` x ``--grid`` maps upsampled with
bicubic interpolation (as wsolevaluation resizes CAMs); ground truth is one
random box per map and the mask of the ellipse inscribed in it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - the reference needs OpenCV
    sys.exit("this benchmark needs OpenCV: pip install opencv-python-headless")
from tqdm.auto import tqdm

from medcam.metrics import box_iou_curves, normalize_maps, pxap
from medcam.metrics.wsol import accuracy_curve
from medcam.progress import show_bar

#: issue 19: minimum loop / medcam CPU ratio of MaxBoxAccV2 at each number of thresholds
GOALS = {100: 2.0, 1000: 10.0}


# --- the reference loop ------------------------------------------------------------------------------

def loop_box_ious(scores: np.ndarray, gts: list[np.ndarray], taus: np.ndarray, largest: bool) -> np.ndarray:
    """Best inclusive IoU per map and threshold, one OpenCV pass per threshold."""
    out = np.zeros((len(scores), len(taus)))
    for i in tqdm(range(len(scores)), desc="reference loop", leave=False, disable=not show_bar(True)):
        u = (scores[i] * 255).astype(np.uint8)
        h, w = u.shape
        peak = np.max(u)
        gt = gts[i]
        for j, tau in enumerate(taus):
            _, binary = cv2.threshold(u, int(tau * peak), 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            if len(contours) == 0:
                boxes = np.zeros((1, 4))
            else:
                if largest:
                    contours = [max(contours, key=cv2.contourArea)]
                rects = np.array([cv2.boundingRect(c) for c in contours])
                boxes = np.stack([rects[:, 0], rects[:, 1], np.minimum(rects[:, 0] + rects[:, 2], w - 1),
                                  np.minimum(rects[:, 1] + rects[:, 3], h - 1)], axis=1)
            iw = np.maximum(0, np.minimum(boxes[:, None, 2], gt[None, :, 2])
                            - np.maximum(boxes[:, None, 0], gt[None, :, 0]) + 1)
            ih = np.maximum(0, np.minimum(boxes[:, None, 3], gt[None, :, 3])
                            - np.maximum(boxes[:, None, 1], gt[None, :, 1]) + 1)
            inter = iw * ih
            union = ((boxes[:, None, 2] - boxes[:, None, 0] + 1) * (boxes[:, None, 3] - boxes[:, None, 1] + 1)
                     + (gt[None, :, 2] - gt[None, :, 0] + 1) * (gt[None, :, 3] - gt[None, :, 1] + 1) - inter)
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
            out[i, j] = iou.max()
    return out


def loop_pxap(scores: np.ndarray, masks: np.ndarray, taus: np.ndarray) -> float:
    """PxAP as wsolevaluation's MaskEvaluator: per-map histograms, then the AP sum (percent)."""
    edges = np.append(taus, [1.0, 2.0, 3.0])
    pos = np.zeros(len(edges) - 1)
    neg = np.zeros(len(edges) - 1)
    for s, m in zip(scores, masks):
        pos += np.histogram(s[m == 1], bins=edges)[0]
        neg += np.histogram(s[m == 0], bins=edges)[0]
    tp = pos[::-1].cumsum()
    fp = neg[::-1].cumsum()
    keep = (tp + fp) != 0
    with np.errstate(invalid="ignore"):
        precision = tp / (tp + fp)
    recall = tp / pos.sum()
    return float((precision[1:] * np.diff(recall))[keep[1:]].sum() * 100)


def max_acc(ious: np.ndarray, deltas: tuple[float, ...]) -> float:
    return float(np.average([accuracy_curve(ious, d).max() for d in deltas]))


# --- data and timing ---------------------------------------------------------------------------------

def make_data(n: int, size: int, grid: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    small = rng.random((n, grid, grid))
    maps = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC) for m in small])
    boxes, masks = [], np.zeros((n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        w, h = rng.integers(size // 8, size // 2, 2)
        x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
        boxes.append(np.array([[x0, y0, x0 + w, y0 + h]]))
        cx, cy = x0 + w / 2, y0 + h / 2
        masks[i] = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1
    return maps, boxes, masks


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maps", type=int, default=200)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--grid", type=int, default=14, help="resolution of the random maps before upsampling")
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--metrics", nargs="+", default=["MaxBoxAccV2", "MaxBoxAcc", "PxAP"],
                        choices=["MaxBoxAccV2", "MaxBoxAcc", "PxAP"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # the comparison is single-threaded on both sides

    maps, boxes, masks = make_data(args.maps, args.size, args.grid, args.seed)
    scores = normalize_maps(maps)
    _, _, warm_wall = timed(lambda: [box_iou_curves(maps[:2], boxes[:2], interval=0.01, mode=m)
                                            for m in ("all", "largest")])
    rows = []
    for interval in args.intervals:
        taus = np.arange(0, 1, interval)
        for metric in args.metrics:
            if metric == "PxAP":
                mine, cpu_m, wall_m = timed(lambda: pxap(maps, masks, interval=interval))
                ref, cpu_r, wall_r = timed(lambda: loop_pxap(scores, masks, taus))
                same = mine == ref
                value = mine
            else:
                largest = metric == "MaxBoxAcc"
                deltas = (0.5,) if largest else (0.3, 0.5, 0.7)
                mode = "largest" if largest else "all"
                ious_m, cpu_m, wall_m = timed(lambda: box_iou_curves(maps, boxes, interval=interval, mode=mode))
                ious_r, cpu_r, wall_r = timed(lambda: loop_box_ious(scores, boxes, taus, largest))
                value = max_acc(ious_m, deltas)
                same = bool(np.array_equal(ious_m, ious_r)) and value == max_acc(ious_r, deltas)
            rows.append({"metric": metric, "thresholds": len(taus), "value": value,
                         "medcam_cpu_s": cpu_m, "loop_cpu_s": cpu_r, "cpu_ratio": cpu_r / cpu_m,
                         "medcam_wall_s": wall_m, "loop_wall_s": wall_r, "wall_ratio": wall_r / wall_m,
                         "identical": same})
            print(f"  {metric} at {len(taus)} thresholds: loop / medcam = {cpu_r / cpu_m:.2f} (CPU)",
                  file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{args.maps} maps of {args.size} x {args.size} (random {args.grid} x {args.grid}, bicubic); "
              "times in seconds")
        print("| metric | thresholds | value | medcam CPU | loop CPU | loop / medcam CPU | medcam wall | loop wall "
              "| loop / medcam wall | identical |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['metric']} | {r['thresholds']} | {r['value']:.2f} | {r['medcam_cpu_s']:.2f} | "
                  f"{r['loop_cpu_s']:.2f} | {r['cpu_ratio']:.2f} | {r['medcam_wall_s']:.2f} | {r['loop_wall_s']:.2f} "
                  f"| {r['wall_ratio']:.2f} | {'yes' if r['identical'] else 'NO'} |")
        print(f"first call (numba compile or cache load, not in the table): {warm_wall:.2f} s wall")
    verdicts = []
    for r in rows:
        if r["metric"] == "MaxBoxAccV2" and r["thresholds"] in GOALS:
            goal = GOALS[r["thresholds"]]
            verdicts.append(f"{r['thresholds']} thresholds {r['cpu_ratio']:.2f}x (goal >= {goal:g}x: "
                            f"{'met' if r['cpu_ratio'] >= goal else 'NOT met'})")
    if verdicts:
        print("MaxBoxAccV2 loop / medcam CPU: " + "; ".join(verdicts))
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
