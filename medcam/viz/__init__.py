"""Visualization of attribution maps: colormap overlays, side-by-side figures, boxes.

Inputs follow medcam's conventions: images ``(C, H, W)`` float tensors in
[0, 1] (or ``(H, W)`` / ``(H, W, 3)`` arrays, or PIL images), maps ``(H, W)``
in [0, 1], boxes ``(N, 4)`` as ``(x0, y0, x1, y1)`` pixels with exclusive
``x1``/``y1``. Every function returns plain data (``(H, W, 3)`` uint8 arrays
or a matplotlib ``Figure``) and writes a PNG only when given a path.

    from medcam.viz import overlay, side_by_side, map_boxes, draw_boxes, save_image
    rgb = overlay(images[0], maps[0])                    # (H, W, 3) uint8
    save_image(draw_boxes(rgb, map_boxes(maps[0], 0.5)), "cam.png")
    side_by_side(images[0], {"gradcam": g[0], "scorecam": s[0]}, path="compare.png")

Matplotlib is used through its object API (no pyplot state, any backend).
"""
from __future__ import annotations

from .draw import draw_boxes, draw_outline, map_boxes, mask_outline
from .figures import figure_to_array, side_by_side
from .overlay import colorize, overlay, save_image, to_rgb

__all__ = ["colorize", "overlay", "save_image", "to_rgb", "side_by_side", "figure_to_array", "draw_boxes",
           "map_boxes", "draw_outline", "mask_outline"]
