"""Input checks and conversions shared by the metrics (maps, masks, boxes)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, ShapeError

__all__ = ["as_maps", "as_masks", "as_box_lists", "pad_boxes", "normalize_maps", "check_unit_maps", "quantize",
           "cam_thresholds"]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_maps(maps: Any, what: str = "maps") -> np.ndarray:
    """``(B, H, W)`` maps (torch or NumPy, any float dtype) as a float64 NumPy copy."""
    a = _to_numpy(maps)
    if a.ndim != 3:
        hint = " (select one class map per image first)" if a.ndim == 4 else ""
        raise ShapeError(f"{what} must be (B, H, W), got shape {tuple(a.shape)}{hint}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise ShapeError(f"{what} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64, copy=True)


def as_masks(masks: Any, shape: tuple[int, ...], ignore_value: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(B, H, W)`` as ``(positive, counted)`` bool arrays.

    Bool masks count every pixel. Integer masks hold 0 (negative), 1 (positive)
    and optionally ``ignore_value`` (not counted), as wsolevaluation's masks do.
    """
    m = _to_numpy(masks)
    if m.shape != tuple(shape):
        raise ShapeError(f"masks must have the maps' shape {tuple(shape)}, got {tuple(m.shape)}")
    if m.dtype == bool:
        return m, np.ones(m.shape, dtype=bool)
    if not np.issubdtype(m.dtype, np.integer):
        raise ShapeError(f"masks must be bool or integer (0, 1, ignore_value), got dtype {m.dtype}")
    allowed = {0, 1} | ({int(ignore_value)} if ignore_value is not None else set())
    bad = (m != 0) & (m != 1)
    if ignore_value is not None:
        bad &= m != ignore_value
    if bad.any():
        raise DataError(f"masks hold values {np.unique(m[bad])[:5].tolist()} outside {sorted(allowed)} "
                        "(use bool masks, or 0/1 with ignore_value for ignored pixels)")
    counted = m != ignore_value if ignore_value is not None else np.ones(m.shape, dtype=bool)
    return m == 1, counted


def as_box_lists(boxes: Any, n: int, what: str = "boxes", allow_empty: bool = False) -> list[np.ndarray]:
    """Per-image boxes as a list of ``(m_i, 4)`` float64 arrays.

    Accepts a list of ``(m_i, 4)`` or ``(4,)`` arrays/tensors, a ``(B, 4)`` or
    a ``(B, M, 4)`` tensor/array.
    """
    if isinstance(boxes, (list, tuple)):
        out = []
        for i, raw in enumerate(boxes):
            a = _to_numpy(raw).astype(np.float64)
            if a.shape[-1:] != (4,) and a.size:
                raise ShapeError(f"{what}[{i}] must be (m, 4), got shape {tuple(a.shape)}")
            out.append(a.reshape(-1, 4))
    else:
        a = _to_numpy(boxes).astype(np.float64)
        if a.ndim == 2 and a.shape[1] == 4:
            out = [row[None] for row in a]
        elif a.ndim == 3 and a.shape[2] == 4:
            out = list(a)
        else:
            raise ShapeError(f"{what} must be a list of (m_i, 4), a (B, 4) or a (B, M, 4) array, got shape {a.shape}")
    if len(out) != n:
        raise ShapeError(f"{what} has {len(out)} entries for {n} maps")
    for i, b in enumerate(out):
        if not np.isfinite(b).all():
            raise DataError(f"{what}[{i}] has non-finite coordinates")
        if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise DataError(f"{what}[{i}] has a box with x1 < x0 or y1 < y0 (boxes are (x0, y0, x1, y1))")
        if not allow_empty and len(b) == 0:
            raise DataError(f"{what}[{i}] is empty: box localization needs at least one ground-truth box "
                            "per image (leave images without a lesion out)")
    return out


def pad_boxes(boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A list of ``(m_i, 4)`` boxes as ``(B, M, 4)`` plus a ``(B, M)`` validity mask."""
    m = max([len(b) for b in boxes] + [1])
    out = np.zeros((len(boxes), m, 4))
    valid = np.zeros((len(boxes), m), dtype=bool)
    for i, b in enumerate(boxes):
        out[i, :len(b)] = b
        valid[i, :len(b)] = True
    return out, valid


def normalize_maps(maps: Any) -> np.ndarray:
    """Min-max normalize each map to [0, 1], as wsolevaluation's ``normalize_scoremap``.

    Args:
        maps: ``(B, H, W)`` raw maps (torch or NumPy).

    Returns:
        ``(B, H, W)`` float64: ``(m - min) / max(m - min)`` per image, computed
        in float64 (the reference casts maps to float64 first); a map with a
        NaN, or a constant map, becomes all zeros.
    """
    a = as_maps(maps)
    if a.size == 0:
        return a
    bad = np.isnan(a).any(axis=(1, 2)) | (a.min(axis=(1, 2)) == a.max(axis=(1, 2)))
    a[bad] = 0.0
    a -= a.min(axis=(1, 2), keepdims=True)
    peak = a.max(axis=(1, 2), keepdims=True)
    np.divide(a, peak, out=a, where=~bad[:, None, None])
    return a


def check_unit_maps(maps: np.ndarray) -> None:
    """Raise unless every value is finite and in [0, 1] (wsolevaluation's scoremap check)."""
    if np.isnan(maps).any():
        raise DataError("maps contain NaN")
    if maps.size and (maps.min() < 0 or maps.max() > 1):
        raise DataError(f"maps must be in [0, 1] (got min {maps.min():.4g}, max {maps.max():.4g}); "
                        "pass normalize=True to min-max normalize each map")


def quantize(maps01: np.ndarray) -> np.ndarray:
    """``uint8(255 * map)`` (truncation), the 8-bit image wsolevaluation thresholds."""
    return (maps01 * 255).astype(np.uint8)


def cam_thresholds(interval: float = 0.01) -> np.ndarray:
    """The CAM threshold sweep ``np.arange(0, 1, interval)`` (0.01: 100 thresholds; 0.001: 1000)."""
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    return np.arange(0, 1, interval)
