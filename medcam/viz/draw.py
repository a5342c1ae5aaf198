"""Boxes from maps (threshold + connected components, via :mod:`medcam.boxes`) and box drawing."""
from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ..boxes import map_to_boxes
from ..errors import ShapeError
from .overlay import to_rgb

__all__ = ["map_boxes", "draw_boxes", "draw_outline", "mask_outline"]


def map_boxes(heatmap: Tensor, threshold: float = 0.5, *, mode: Literal["largest", "all"] = "all",
              connectivity: int = 8) -> Tensor:
    """Boxes of the regions of one map above ``threshold`` (strictly).

    Args:
        heatmap: ``(H, W)`` map in [0, 1] (a ``(1, H, W)`` batch of one is accepted).
        threshold: foreground is ``map > threshold``.
        mode: every connected component (``"all"``) or the largest one.

    Returns:
        ``(N, 4)`` float boxes ``(x0, y0, x1, y1)`` in the map's pixels, ``x1``/``y1``
        exclusive (the connected components are :func:`medcam.boxes.map_to_boxes`).
    """
    maps = torch.as_tensor(heatmap).detach()
    if maps.dim() == 2:
        maps = maps[None]
    if maps.dim() != 3 or maps.shape[0] != 1:
        raise ShapeError(f"map_boxes takes one map (H, W), got {tuple(maps.shape)}; for a batch use "
                         f"medcam.boxes.map_to_boxes")
    return map_to_boxes(maps.float(), threshold, mode=mode, connectivity=connectivity)[0]


def draw_boxes(image: Any, boxes: Any, *, color: Sequence[int] = (255, 0, 0), width: int = 2,
               labels: Sequence[str] | None = None) -> np.ndarray:
    """Draw boxes on an image.

    Args:
        image: see :func:`medcam.viz.overlay.to_rgb`.
        boxes: ``(N, 4)`` ``(x0, y0, x1, y1)`` pixels, exclusive ``x1``/``y1``
            (a tensor, array or list); the outline covers the box's edge pixels.
        color: RGB outline color.
        width: outline width in pixels (drawn inwards).
        labels: optional text per box, written at its top-left corner.

    Returns:
        a new ``(H, W, 3)`` uint8 array.
    """
    from PIL import Image, ImageDraw

    rows = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4) if len(boxes) else torch.zeros(0, 4)
    if labels is not None and len(labels) != rows.shape[0]:
        raise ShapeError(f"{len(labels)} labels for {rows.shape[0]} boxes")
    canvas = Image.fromarray(to_rgb(image))
    pen = ImageDraw.Draw(canvas)
    for i, (x0, y0, x1, y1) in enumerate(rows.tolist()):
        if x1 <= x0 or y1 <= y0:
            continue
        pen.rectangle([round(x0), round(y0), round(x1) - 1, round(y1) - 1], outline=tuple(color), width=width)
        if labels is not None:
            pen.text((round(x0) + width, round(y0) + width), str(labels[i]), fill=tuple(color))
    return np.asarray(canvas).copy()


def mask_outline(mask: Any, width: int = 1) -> np.ndarray:
    """The boundary pixels of a mask: ``(H, W)`` bool -> ``(H, W)`` bool, ``width`` pixels thick, inside the mask.

    A pixel is on the boundary when it is in the mask and one of its 8
    neighbours is not (pixels outside the image count as outside the mask).
    """
    inside = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask, dtype=bool)
    if inside.ndim != 2:
        raise ShapeError(f"mask must be (H, W), got shape {inside.shape}")
    core = inside.copy()
    for _ in range(max(1, int(width))):
        padded = np.pad(core, 1, constant_values=False)
        shrunk = core.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                shrunk &= padded[dy:dy + core.shape[0], dx:dx + core.shape[1]]
        core = shrunk
    return inside & ~core


def draw_outline(image: Any, mask: Any, *, color: Sequence[int] = (255, 0, 0), width: int = 2) -> np.ndarray:
    """Draw the outline of a mask (:func:`mask_outline`) on an image.

    Args:
        image: see :func:`medcam.viz.overlay.to_rgb`; mask: ``(H, W)`` bool, the image's size.

    Returns:
        a new ``(H, W, 3)`` uint8 array.
    """
    out = to_rgb(image)
    edge = mask_outline(mask, width)
    if edge.shape != out.shape[:2]:
        raise ShapeError(f"mask {edge.shape} does not match the image {out.shape[:2]}")
    out[edge] = np.asarray(color, dtype=np.uint8)
    return out
