"""How good are the training-free ``lung_fields`` masks on real radiographs? Plausibility and official boxes.

    python benchmarks/lung_fields.py --data ../shared/data/nih_sample --gallery docs/lung_fields_gallery.png

For every image of an NIH ChestX-ray14 folder (official layout), the
``lung_fields`` mask exactly as ``medcam segment`` / ``medcam explain
--segmenter lung_fields`` compute it (the segmenter's 224 px input mapped back
to the file) and:

* **plausibility**: two components, one on each side of the image centre
  ("left/right"), foreground fraction in [0.08, 0.45] (both lungs of an adult PA
  film cover roughly a quarter of it);
* **official boxes** (``BBox_List_2017.csv``, scaled from 1024 px to the file) of
  the *lung findings* (Atelectasis, Effusion, Infiltrate, Mass, Nodule, Pneumonia,
  Pneumothorax: parenchymal and pleural findings, inside the lung fields on a
  frontal film) on the images present: the box centre inside the union box of
  the mask (the reference box ``attention_box`` uses), at least half of the box
  area inside it, the centre inside a component box (one lung's box), and the
  mean share of the box area inside the union box and inside the mask itself.
  Cardiomegaly (the heart, between the lungs) is reported on its own line.
* **baseline** measured in the same run: one fixed box for every image, the
  mean of the images' union boxes; the union box only helps if it contains
  the findings about as often with less area per image.

Prints a table (``--json``: every number) and writes a gallery of masks and
boxes on ``--gallery-count`` boxed radiographs (``--gallery``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medcam_seg.lung_fields import PLAUSIBLE_FRACTION, mask_plausibility

#: The BBox_List findings counted as lung findings (the box file spells Infiltration "Infiltrate").
LUNG_FINDINGS = ("Atelectasis", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax")


def _inside(box: np.ndarray, ref: np.ndarray) -> float:
    """Share of ``box``'s area inside ``ref`` (both (x0, y0, x1, y1))."""
    w = max(0.0, float(min(box[2], ref[2]) - max(box[0], ref[0])))
    h = max(0.0, float(min(box[3], ref[3]) - max(box[1], ref[1])))
    return float(w * h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9))


def _centre_in(box: np.ndarray, ref: np.ndarray) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(ref[0] <= cx < ref[2] and ref[1] <= cy < ref[3])


def box_scores(box: np.ndarray, mask: np.ndarray, union: np.ndarray, lungs: list[list[float]],
               fixed: np.ndarray) -> dict[str, Any]:
    """Containment of one finding box (file pixels) by the mask, its union box, its component boxes, a fixed box."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = mask.shape
    patch = mask[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    return {"centre_in_union": _centre_in(box, union), "half_in_union": _inside(box, union) >= 0.5,
            "share_in_union": _inside(box, union), "share_in_mask": float(patch.mean()) if patch.size else 0.0,
            "centre_in_a_lung_box": any(_centre_in(box, np.asarray(b)) for b in lungs),
            "centre_in_fixed": _centre_in(box, fixed), "half_in_fixed": _inside(box, fixed) >= 0.5}


def measure(data: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Segment every image of ``data``; returns the summary and one row per image (mask, boxes, scores)."""
    from PIL import Image

    import medcam
    from medcam.data.nih import read_bbox_csv
    from medcam.segment_folder import segment_image

    seg = medcam.build_segmenter("lung_fields")
    files = sorted((data).glob("images_*/images/*.png"))
    if not files:
        raise SystemExit(f"error: no images_*/images/*.png under {data} (an NIH ChestX-ray14 folder)")
    box_file = data / "BBox_List_2017.csv"
    official = read_bbox_csv(box_file) if box_file.is_file() else {}
    rows = []
    for path in files:
        mask = segment_image(seg, path)
        rows.append({"name": path.name, "path": str(path), "mask": mask, **mask_plausibility(mask)})
    unions = np.array([r["union"] for r in rows])
    fixed = unions.mean(0)
    size = np.array([rows[0]["mask"].shape[1], rows[0]["mask"].shape[0]] * 2, dtype=float)
    findings = []
    for row in rows:
        h, w = row["mask"].shape
        for finding, box in official.get(row["name"], []):
            box = np.asarray(box) * np.array([w, h, w, h]) / 1024.0
            findings.append({"image": row["name"], "finding": finding, "box": box.tolist(),
                             **box_scores(box, row["mask"], np.asarray(row["union"]), row["boxes"], fixed)})
    summary = {
        "images": len(rows),
        "two_components": sum(r["components"] == 2 for r in rows),
        "left_right": sum(r["left_right"] for r in rows),
        "plausible": sum(r["plausible"] for r in rows),
        "empty": sum(r["components"] == 0 for r in rows),
        "fraction_median": float(np.median([r["fraction"] for r in rows])),
        "fraction_p5_p95": [float(np.percentile([r["fraction"] for r in rows], q)) for q in (5, 95)],
        "union_area_mean": float(np.mean([(u[2] - u[0]) * (u[3] - u[1]) for u in unions]) / (size[0] * size[1])),
        "fixed_box": fixed.round(1).tolist(),
        "fixed_area": float((fixed[2] - fixed[0]) * (fixed[3] - fixed[1]) / (size[0] * size[1])),
        "lung_findings": _box_summary([f for f in findings if f["finding"] in LUNG_FINDINGS]),
        "cardiomegaly": _box_summary([f for f in findings if f["finding"] == "Cardiomegaly"]),
        "findings": [{k: v for k, v in f.items()} for f in findings],
    }
    return summary, rows


def _box_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("centre_in_union", "half_in_union", "centre_in_a_lung_box", "centre_in_fixed", "half_in_fixed")
    out: dict[str, Any] = {"boxes": len(items), **{k: sum(bool(i[k]) for i in items) for k in keys}}
    for k in ("share_in_union", "share_in_mask"):
        out[f"mean_{k}"] = float(np.mean([i[k] for i in items])) if items else float("nan")
    return out


def gallery(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path, count: int) -> None:
    """Masks (red), lung boxes (yellow: components, dashed: union) and official finding boxes (cyan)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from PIL import Image

    boxed = {f["image"] for f in summary["findings"]}
    chosen = [r for r in rows if r["name"] in boxed][:count]
    chosen += [r for r in rows if r["name"] not in boxed][: count - len(chosen)]
    cols = min(4, len(chosen))
    fig, axes = plt.subplots(-(-len(chosen) // cols), cols, figsize=(3.0 * cols, 3.2 * -(-len(chosen) // cols)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, chosen):
        ax.imshow(np.asarray(Image.open(row["path"]).convert("L")), cmap="gray")
        ax.contour(row["mask"], [0.5], colors="red", linewidths=0.8)
        for x0, y0, x1, y1 in row["boxes"]:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=0.8))
        x0, y0, x1, y1 = row["union"]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=1.0, ls="--"))
        for f in (f for f in summary["findings"] if f["image"] == row["name"]):
            x0, y0, x1, y1 = f["box"]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="cyan", lw=1.2))
            ax.text(x0, max(y0 - 3, 8), f["finding"], color="cyan", fontsize=7)
        ax.set_title(f"{row['name']}  {row['fraction']:.2f} of image", fontsize=7)
    fig.suptitle("lung_fields: mask (red), lung boxes (yellow; dashed: union), official finding boxes (cyan)",
                 fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def _table(summary: dict[str, Any]) -> str:
    n = summary["images"]
    lines = [f"lung_fields on {n} radiographs",
             f"  two components: {summary['two_components']}/{n}   left/right pair: {summary['left_right']}/{n}   "
             f"plausible (pair, fraction in {PLAUSIBLE_FRACTION}): {summary['plausible']}/{n}   empty: "
             f"{summary['empty']}",
             f"  foreground fraction: median {summary['fraction_median']:.3f}, 5-95% "
             f"{summary['fraction_p5_p95'][0]:.3f}-{summary['fraction_p5_p95'][1]:.3f}",
             f"  union box area: mean {summary['union_area_mean']:.3f} of the image; fixed baseline box "
             f"{summary['fixed_box']} = {summary['fixed_area']:.3f}",
             "", f"{'official boxes':<16} {'n':>3} {'centre in union':>16} {'half in union':>14} "
                 f"{'centre in a lung box':>21} {'share in union':>15} {'share in mask':>14} "
                 f"{'centre in fixed':>16} {'half in fixed':>14}"]
    for name, key in (("lung findings", "lung_findings"), ("cardiomegaly", "cardiomegaly")):
        s = summary[key]
        lines.append(f"{name:<16} {s['boxes']:>3} {s['centre_in_union']:>16} {s['half_in_union']:>14} "
                     f"{s['centre_in_a_lung_box']:>21} {s['mean_share_in_union']:>15.3f} "
                     f"{s['mean_share_in_mask']:>14.3f} {s['centre_in_fixed']:>16} {s['half_in_fixed']:>14}")
    lines.append("")
    for f in summary["findings"]:
        lines.append(f"  {f['image']} {f['finding']:<13} centre in union {int(f['centre_in_union'])}  share in "
                     f"union {f['share_in_union']:.2f}  share in mask {f['share_in_mask']:.2f}  centre in a lung "
                     f"box {int(f['centre_in_a_lung_box'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/nih_sample", help="NIH ChestX-ray14 folder")
    parser.add_argument("--gallery", help="write the gallery PNG here (e.g. docs/lung_fields_gallery.png)")
    parser.add_argument("--gallery-count", type=int, default=8, help="radiographs in the gallery (boxed first)")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    summary, rows = measure(Path(args.data))
    if args.gallery:
        gallery(rows, summary, Path(args.gallery), args.gallery_count)
    print(json.dumps(summary, indent=2) if args.json else _table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
