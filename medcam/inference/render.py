"""The pictures ``medcam explain`` writes: saliency map, attribution overlay, mask overlay.

Colormaps, overlays and box outlines come from :mod:`medcam.viz`; this module
only composes them and names the files: ``<stem>_<kind>_<YYYYmmddHHMMSS>.png``
(the dental screener's naming), with ``_1``, ``_2``, ... appended when a file
of that name exists, so two images with the same stem never overwrite each
other's pictures.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from torch import Tensor

from ..viz import colorize, draw_boxes, draw_outline, overlay, save_image, to_rgb

__all__ = ["timestamp", "saliency_image", "attribution_overlay", "mask_overlay", "write_pngs", "png_name"]

#: Outline colours (RGB): attribution boxes on the overlay, the ground truth (mask outline or boxes; magenta,
#: a colour the jet map never takes), mask boxes on the mask picture.
ATTRIBUTION_BOX_COLOR = (255, 255, 255)
GROUND_TRUTH_COLOR = (255, 0, 255)
MASK_COLOR = (0, 200, 0)
MASK_BOX_COLOR = (255, 220, 0)


def timestamp(now: datetime | None = None) -> str:
    """``YYYYmmddHHMMSS`` of ``now`` (default: the local time)."""
    return (now or datetime.now()).strftime("%Y%m%d%H%M%S")


def saliency_image(heatmap: Tensor, cmap: str = "jet") -> np.ndarray:
    """The map alone through a colormap: ``(H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8."""
    return colorize(heatmap, cmap)


def attribution_overlay(image: Any, heatmap: Tensor, boxes: Any = (), *, cmap: str = "jet",
                        alpha: float = 0.5, truth_boxes: Any = (), truth_mask: Any = None) -> np.ndarray:
    """The map blended over the image, with its boxes outlined (and the ground truth, when known).

    Args:
        image: ``(H, W, C)`` float in [0, 1] (or anything :func:`medcam.viz.to_rgb` takes).
        heatmap: ``(H, W)`` in [0, 1], same size as the image.
        boxes: ``(N, 4)`` ``(x0, y0, x1, y1)`` in the image's pixels (exclusive ends).
        truth_boxes: ``(M, 4)`` ground-truth boxes, drawn in :data:`GROUND_TRUTH_COLOR`.
        truth_mask: ``(H, W)`` bool ground-truth mask, its outline drawn in :data:`GROUND_TRUTH_COLOR`.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    rgb = overlay(image, heatmap, cmap=cmap, alpha=alpha)
    width = _line_width(rgb)
    if truth_mask is not None:
        rgb = draw_outline(rgb, truth_mask, color=GROUND_TRUTH_COLOR, width=width)
    if len(truth_boxes):
        rgb = draw_boxes(rgb, truth_boxes, color=GROUND_TRUTH_COLOR, width=width)
    return draw_boxes(rgb, boxes, color=ATTRIBUTION_BOX_COLOR, width=width) if len(boxes) else rgb


def mask_overlay(image: Any, mask: Tensor | np.ndarray, boxes: Any = (), *, alpha: float = 0.4) -> np.ndarray:
    """The image with the mask's pixels tinted and the mask's boxes outlined.

    Args:
        image: ``(H, W, C)`` float in [0, 1] (or anything :func:`medcam.viz.to_rgb` takes).
        mask: ``(H, W)`` bool, same size as the image.
        boxes: ``(N, 4)`` boxes in the image's pixels.
        alpha: weight of the tint inside the mask.

    Returns:
        ``(H, W, 3)`` uint8: ``(1 - alpha) * image + alpha * green`` inside the mask, the image elsewhere.
    """
    out = to_rgb(image)
    inside = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask, dtype=bool)
    if inside.shape != out.shape[:2]:
        raise ValueError(f"mask {inside.shape} does not match the image {out.shape[:2]}")
    tint = np.asarray(MASK_COLOR, dtype=np.float64)
    out[inside] = np.clip((1.0 - alpha) * out[inside] + alpha * tint + 0.5, 0, 255).astype(np.uint8)  # mask pixels only
    return draw_boxes(out, boxes, color=MASK_BOX_COLOR, width=_line_width(out)) if len(boxes) else out


def _line_width(rgb: np.ndarray) -> int:
    """Box outline width: 2 px, thicker on large images so boxes stay visible."""
    return max(2, round(max(rgb.shape[:2]) / 300))


def png_name(stem: str, kind: str, stamp: str, n: int = 0) -> str:
    """``<stem>_<kind>_<stamp>.png``, or ``..._<stamp>_<n>.png`` for ``n > 0``."""
    return f"{stem}_{kind}_{stamp}{'' if n == 0 else f'_{n}'}.png"


def write_pngs(images: Mapping[str, Any], out_dir: str | os.PathLike[str], stem: str,
               stamp: str | None = None, *, max_tries: int = 10000) -> dict[str, str]:
    """Write each picture as ``<out_dir>/<stem>_<kind>_<stamp>.png``, never overwriting a file.

    The names of one call share their suffix: if any of them exists (or is
    created meanwhile by another process), all move on to ``_1``, ``_2``, ...

    Args:
        images: ``{kind: (H, W, 3) uint8}``, e.g. ``{"saliency": ..., "overlay": ...}``.
        out_dir: destination folder (created; :class:`~medcam.errors.OutputError` if it is a file).
        stem: the image's file stem.
        stamp: the timestamp (default: now).

    Returns:
        ``{kind: path}`` as strings.
    """
    from ..outputs import output_folder

    folder = output_folder(out_dir, "output folder")
    stamp = stamp or timestamp()
    kinds: Sequence[str] = list(images)
    for n in range(max_tries):
        claimed: list[Path] = []
        try:
            for kind in kinds:
                path = folder / png_name(stem, kind, stamp, n)
                with open(path, "xb"):  # atomic claim of the name
                    pass
                claimed.append(path)
        except FileExistsError:
            for path in claimed:
                path.unlink(missing_ok=True)
            continue
        return {kind: str(save_image(images[kind], path)) for kind, path in zip(kinds, claimed)}
    raise FileExistsError(f"no free file name for '{stem}' in {folder} after {max_tries} tries")
