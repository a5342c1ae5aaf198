"""Benchmark outputs: the markdown table, the bar plot and the overlay gallery.

Rows are dicts as produced by :mod:`medcam.bench.run`::

    {"model": key | None, "model_label": str, "backbone": str, "method": label, "kind": "baseline" | "method",
     "max_box_acc_v2": float, "pxap": float, "gt_known_loc": float, "mean_iou": float (0..1),
     "box_acc_v2_at_val_tau": float | None, "accuracy": float | None, "balanced_accuracy": float | None,
     "time_ms": float | None, ...}

Box metrics and PxAP are percentages (as in Choe et al.); ``mean_iou`` is a
fraction; accuracies are fractions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from torch import Tensor

__all__ = ["markdown_table", "pivot_table", "bar_plot", "gallery"]

#: (column title, row key, format) of the main table.
COLUMNS: list[tuple[str, str, str]] = [
    ("MaxBoxAccV2", "max_box_acc_v2", "{:.1f}"),
    ("PxAP", "pxap", "{:.1f}"),
    ("GT-known Loc", "gt_known_loc", "{:.1f}"),
    ("mean IoU", "mean_iou", "{:.3f}"),
    ("BoxAccV2 @ val tau", "box_acc_v2_at_val_tau", "{:.1f}"),
    ("val MaxBoxAccV2", "val_max_box_acc_v2", "{:.1f}"),
    ("acc", "accuracy", "{:.3f}"),
    ("bal. acc", "balanced_accuracy", "{:.3f}"),
    ("ms / image", "time_ms", "{:.1f}"),
]


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return pattern.format(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], *, columns: Sequence[tuple[str, str, str]] = COLUMNS) -> str:
    """One line per (model, method) and per baseline; the best value of each localization column in bold."""
    head = ["model", "method"] + [c[0] for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(columns)) + "|"]
    best: dict[str, float] = {}
    for _, key, _ in columns[:6]:
        values = [r.get(key) for r in rows if r.get(key) is not None]
        if values:
            best[key] = max(values)
    for r in rows:
        cells = [str(r.get("model_label") or "-"), str(r["method"])]
        for _, key, pattern in columns:
            text = _fmt(r.get(key), pattern)
            if key in best and r.get(key) is not None and r.get(key) == best[key]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pivot_table(rows: Sequence[Mapping[str, Any]], key: str = "max_box_acc_v2", pattern: str = "{:.1f}") -> str:
    """Method x model table of one metric (baselines in their own column)."""
    models: list[str] = []
    methods: list[str] = []
    cell: dict[tuple[str, str], Any] = {}
    for r in rows:
        col = "baseline" if r["kind"] == "baseline" else str(r["model_label"])
        if col not in models:
            models.append(col)
        if r["method"] not in methods:
            methods.append(r["method"])
        cell[(r["method"], col)] = r.get(key)
    lines = ["| method | " + " | ".join(models) + " |", "|---|" + "|".join(["---:"] * len(models)) + "|"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(cell.get((m, c)), pattern) for c in models) + " |")
    return "\n".join(lines) + "\n"


def _figure(width: float, height: float, dpi: int) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def bar_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "", dpi: int = 110) -> Path:
    """Horizontal bars of MaxBoxAccV2 and PxAP per row; baselines grey, with dashed reference lines."""
    from matplotlib import colormaps

    labels = [(f"{r['model_label']} / " if r["kind"] != "baseline" else "baseline / ") + str(r["method"])
              for r in rows]
    keys = [r["model"] for r in rows if r["kind"] != "baseline"]
    models = list(dict.fromkeys(keys))
    palette = colormaps["tab10"]
    colors = ["0.6" if r["kind"] == "baseline" else palette(models.index(r["model"]) % 10) for r in rows]
    n = len(rows)
    fig = _figure(12, max(3.0, 0.28 * n + 1.5), dpi)
    y = np.arange(n)[::-1]
    for j, (key, name) in enumerate((("max_box_acc_v2", "MaxBoxAccV2 (%)"), ("pxap", "PxAP (%)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        values = [r.get(key) if r.get(key) is not None else 0.0 for r in rows]
        ax.barh(y, values, color=colors)
        for yy, v in zip(y, values):
            ax.text(v + 0.3, yy, f"{v:.1f}", va="center", fontsize=7)
        for r in rows:
            if r["kind"] == "baseline" and r.get(key) is not None:
                ax.axvline(r[key], color="0.4", linestyle="--", linewidth=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(labels if j == 0 else [], fontsize=7)
        ax.set_xlabel(name)
        ax.set_xlim(0, max(values + [1.0]) * 1.15)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def gallery(images: Tensor, boxes: Sequence[Tensor], titles: Sequence[str], rows: Sequence[tuple[str, Tensor]],
            path: str | Path, *, panel: float = 1.2, dpi: int = 72) -> Path:
    """The same images in every row: the input with its ground-truth boxes, then one overlay row per method.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        boxes: ground-truth boxes per image, ``(m_i, 4)`` ``(x0, y0, x1, y1)``, drawn in lime.
        titles: column titles (N).
        rows: ``(row label, maps (N, H, W) in [0, 1])``.
    """
    from medcam.viz import draw_boxes, overlay, to_rgb

    n = images.shape[0]
    width, height = 1.9 + panel * n, panel * (len(rows) + 1) + 0.3
    fig = _figure(width, height, dpi)
    grid = fig.add_gridspec(len(rows) + 1, n, left=1.8 / width, right=1 - 0.05 / width, top=1 - 0.25 / height,
                            bottom=0.05 / height, wspace=0.03, hspace=0.06)
    lime = (50, 255, 50)
    for r, (label, maps) in enumerate([("input + lesion box", None)] + list(rows)):
        for c in range(n):
            ax = fig.add_subplot(grid[r, c])
            base = to_rgb(images[c]) if maps is None else overlay(images[c], maps[c])
            ax.imshow(draw_boxes(base, boxes[c], color=lime, width=1))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=6)
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
