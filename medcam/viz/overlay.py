"""Colormaps and overlays: an attribution map blended over its input image."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ShapeError

__all__ = ["to_rgb", "as_map", "colorize", "overlay", "save_image"]


def to_rgb(image: Any) -> np.ndarray:
    """An image as an ``(H, W, 3)`` uint8 array.

    Accepts a tensor ``(C, H, W)`` (C = 1 or 3) or ``(H, W)`` float in [0, 1],
    a NumPy array ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (uint8, or float
    in [0, 1]), or a PIL image. Float values are clipped to [0, 1].
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if isinstance(image, torch.Tensor):
        array = image.detach().float().cpu()
        if array.dim() == 3:
            if array.shape[0] not in (1, 3):
                raise ShapeError(f"image tensor must be (C, H, W) with C = 1 or 3, got {tuple(array.shape)}")
            array = array.permute(1, 2, 0)
        elif array.dim() != 2:
            raise ShapeError(f"image tensor must be (C, H, W) or (H, W), got {tuple(array.shape)} "
                             f"(take one image of a batch: images[i])")
        image = array.numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ShapeError(f"image array must be (H, W), (H, W, 1) or (H, W, 3), got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype == np.uint8:
        return array.copy()
    scaled = np.clip(array.astype(np.float32), 0.0, 1.0)
    scaled *= np.float32(255.0)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)


def as_map(heatmap: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """A map ``(H, W)`` (tensor or array, values in [0, 1]) as float32, bilinearly resized to ``size``."""
    tensor = torch.as_tensor(heatmap.detach().cpu() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap))
    tensor = tensor.float()
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise ShapeError(f"a map must be (H, W), got {tuple(tensor.shape)} (take one map of a batch: maps[i])")
    if size is not None and tuple(tensor.shape) != tuple(size):
        tensor = F.interpolate(tensor[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    return tensor.clamp(0.0, 1.0).numpy()


def colorize(heatmap: Any, cmap: str = "jet") -> np.ndarray:
    """A map ``(H, W)`` in [0, 1] through a matplotlib colormap: ``(H, W, 3)`` uint8.

    The colormap's ``N`` colours are rounded to uint8 once and indexed as
    matplotlib indexes them (``floor(x * N)``, 1.0 in the last bin), so the
    result equals ``colormap(map)`` rounded, without its ``(H, W, 4)`` float64
    intermediate (128 MB for a 2048 x 2048 map; this needs 3 bytes a pixel).
    """
    from matplotlib import colormaps

    try:
        colormap = colormaps[cmap]
    except KeyError as err:
        from ..registry import did_you_mean

        raise ValueError(f"unknown colormap '{cmap}'{did_you_mean(cmap, list(colormaps))}") from err
    n = colormap.N
    lut = (colormap(np.arange(n))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    values = np.nan_to_num(as_map(heatmap), copy=False)
    index = (values * np.float32(n)).astype(np.intp)
    np.clip(index, 0, n - 1, out=index)
    return lut[index]


def overlay(image: Any, heatmap: Any, *, cmap: str = "jet", alpha: float = 0.5) -> np.ndarray:
    """Blend a colorized map over an image: ``(1 - alpha) * image + alpha * colormap(map)``.

    Args:
        image: see :func:`to_rgb`; its size sets the output size.
        heatmap: ``(h, w)`` in [0, 1]; resized (bilinear) to the image if needed.
        cmap: matplotlib colormap name.
        alpha: weight of the heatmap, in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = to_rgb(image)
    colored = colorize(as_map(heatmap, rgb.shape[:2]), cmap)
    blended = rgb.astype(np.float32)  # float32 in place: 12 bytes a pixel at the peak, not 48
    blended *= np.float32(1.0 - alpha)
    blended += np.float32(alpha) * colored
    blended += np.float32(0.5)
    return np.clip(blended, 0, 255, out=blended).astype(np.uint8)


def save_image(array: Any, path: str | Path) -> Path:
    """Write an image (anything :func:`to_rgb` accepts) as a PNG; parent folders are created."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_rgb(array)).save(path, format="PNG")
    return path
