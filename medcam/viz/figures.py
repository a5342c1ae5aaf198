"""Side-by-side figures: the input next to one overlay per method (or class), with boxes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import ShapeError
from .overlay import overlay, to_rgb

__all__ = ["side_by_side", "figure_to_array"]


def _panels(maps: Any, titles: Sequence[str] | None) -> list[tuple[str, Any]]:
    if isinstance(maps, Mapping):
        items = list(maps.items())
    else:
        if isinstance(maps, torch.Tensor) and maps.dim() == 2:
            maps = maps[None]
        items = [(f"map {i}", m) for i, m in enumerate(maps)]
    if titles is not None:
        if len(titles) != len(items):
            raise ShapeError(f"{len(titles)} titles for {len(items)} maps")
        items = [(t, m) for t, (_, m) in zip(titles, items)]
    if not items:
        raise ShapeError("side_by_side needs at least one map")
    return [(str(t), m) for t, m in items]


def _add_boxes(ax: Any, boxes: Any, color: str) -> None:
    from matplotlib.patches import Rectangle

    if boxes is None:
        return
    rows = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4) if len(boxes) else torch.zeros(0, 4)
    for x0, y0, x1, y1 in rows.tolist():
        # pixel i covers [i - 0.5, i + 0.5) in imshow coordinates
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.5))


def side_by_side(image: Any, maps: Mapping[str, Any] | Sequence[Any] | torch.Tensor, *,
                 titles: Sequence[str] | None = None, boxes: Mapping[str, Any] | Sequence[Any] | None = None,
                 gt_boxes: Any = None, cmap: str = "jet", alpha: float = 0.5, suptitle: str | None = None,
                 path: str | Path | None = None, panel_size: float = 3.0, dpi: int = 100) -> Any:
    """One figure: the input, then an overlay per map.

    Args:
        image: the input (see :func:`medcam.viz.overlay.to_rgb`), e.g. ``images[i]`` ``(C, H, W)``.
        maps: ``{title: (H, W) map}``, a sequence of maps, or a ``(T, H, W)`` tensor.
        titles: panel titles for a sequence of maps.
        boxes: predicted boxes per map (same keys / order as ``maps``), each ``(N, 4)``, drawn in red.
        gt_boxes: ground-truth boxes ``(N, 4)`` drawn in lime on every panel.
        cmap, alpha: as in :func:`medcam.viz.overlay.overlay`.
        suptitle: figure title.
        path: also save the figure there (PNG by extension); parent folders are created.

    Returns:
        the matplotlib ``Figure`` (``figure_to_array`` turns it into pixels).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(maps, titles)
    if boxes is not None:
        box_list = [boxes[t] for t, _ in panels] if isinstance(boxes, Mapping) else list(boxes)
        if len(box_list) != len(panels):
            raise ShapeError(f"{len(box_list)} box sets for {len(panels)} maps")
    else:
        box_list = [None] * len(panels)
    rgb = to_rgb(image)
    figure = Figure(figsize=(panel_size * (len(panels) + 1), panel_size + (0.4 if suptitle else 0.0)), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels) + 1, squeeze=False)[0]
    axes[0].imshow(rgb)
    axes[0].set_title("input")
    _add_boxes(axes[0], gt_boxes, "lime")
    for ax, (title, heatmap), predicted in zip(axes[1:], panels, box_list):
        ax.imshow(overlay(rgb, heatmap, cmap=cmap, alpha=alpha))
        ax.set_title(title)
        _add_boxes(ax, gt_boxes, "lime")
        _add_boxes(ax, predicted, "red")
    for ax in axes:
        ax.set_axis_off()
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=dpi)
    return figure


def figure_to_array(figure: Any) -> np.ndarray:
    """Render a matplotlib figure to an ``(H, W, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
