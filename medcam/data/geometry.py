"""How pixel coordinates move through the preprocessing (:class:`Geometry`) and box transforms.

Every step of :mod:`medcam.data.preprocess` (reduction on load, resize, crop or
pad) records how a point of the original image moves, so maps and boxes
computed on the model input map back onto the original image
(``geometry.map_to_original``, ``geometry.boxes_to_original``) and boxes of the
original onto the model input (:func:`transform_boxes`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ShapeError

__all__ = ["Geometry", "transform_boxes"]


@dataclass(frozen=True)
class Geometry:
    """How pixel coordinates of the original image map onto the model input.

    A point ``(x, y)`` in pixel-edge coordinates of the original image (the
    top-left corner of pixel ``(i, j)`` is ``(j, i)``) lands at
    ``(x * scale_x - offset_x, y * scale_y - offset_y)`` in the output. Crops
    have positive offsets, padding negative ones.
    """

    original_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: tuple[float, float]  # (sy, sx)
    offset: tuple[float, float] = (0.0, 0.0)  # (oy, ox)

    def shifted(self, offset: Sequence[float], output_size: Sequence[int]) -> "Geometry":
        """This geometry followed by a crop/pad at ``offset`` (``(oy, ox)``) to ``output_size``."""
        return Geometry(self.original_size, (int(output_size[0]), int(output_size[1])), self.scale,
                        (self.offset[0] + float(offset[0]), self.offset[1] + float(offset[1])))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    def after_reduction(self, factor: int, original_size: Sequence[int]) -> "Geometry":
        """This geometry (from an image reduced ``factor`` times) as seen from the full-size ``original_size``.

        A reduced pixel edge ``y_r`` is the original ``y = factor * y_r``, so the
        scale divides by ``factor`` and the offset stays.
        """
        sy, sx = self.scale
        return Geometry((int(original_size[0]), int(original_size[1])), self.output_size,
                        (sy / factor, sx / factor), self.offset)

    def on_grid(self, factor: int) -> "Geometry":
        """This geometry as seen from the original reduced ``factor`` times (``ceil(H0 / factor)`` rows, ...):
        what :meth:`map_to_original` needs to map onto a reduced picture of the original."""
        h0, w0 = self.original_size
        sy, sx = self.scale
        return Geometry((-(-h0 // factor), -(-w0 // factor)), self.output_size, (sy * factor, sx * factor),
                        self.offset)

    def boxes_to_output(self, boxes: Any) -> Tensor:
        """``(N, 4)`` ``(x0, y0, x1, y1)`` boxes in original pixels -> output pixels, clipped to the output.

        Boxes that fall completely outside (zero area after clipping) are kept
        with zero area; use :func:`transform_boxes` to drop them.
        """
        out, _ = transform_boxes(_as_boxes(boxes), self.scale, self.offset, self.output_size)
        return out

    def boxes_to_original(self, boxes: Any) -> Tensor:
        """``(N, 4)`` boxes in output (model input) pixels -> original image pixels, clipped to the image."""
        b = _as_boxes(boxes)
        sy, sx = self.scale
        oy, ox = self.offset
        out = torch.stack([(b[:, 0] + ox) / sx, (b[:, 1] + oy) / sy, (b[:, 2] + ox) / sx, (b[:, 3] + oy) / sy], 1)
        h, w = self.original_size
        return _clip_boxes(out, h, w)

    def map_to_original(self, maps: Tensor) -> Tensor:
        """Resample maps computed on the model input onto the original image.

        Args:
            maps: ``(h, w)``, ``(B, h, w)`` or ``(B, K, h, w)``, covering the whole
                model input (any resolution, e.g. a CAM at feature resolution).

        Returns:
            the same leading dims with ``(H0, W0)`` the original size; bilinear;
            original pixels that were cropped away get 0.
        """
        if not isinstance(maps, Tensor) or maps.dim() not in (2, 3, 4):
            raise ShapeError(f"maps must be a (h, w), (B, h, w) or (B, K, h, w) tensor, got "
                             f"{tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}")
        lead = maps.shape[:-2]
        h, w = maps.shape[-2:]
        flat = maps.reshape(-1, 1, h, w).float()
        H0, W0 = self.original_size
        H, W = self.output_size
        sy, sx = self.scale
        oy, ox = self.offset
        ys = (torch.arange(H0, dtype=torch.float64) + 0.5) * sy - oy  # output pixel-edge coordinates
        xs = (torch.arange(W0, dtype=torch.float64) + 0.5) * sx - ox
        gy = (2 * ys / H - 1).float()
        gx = (2 * xs / W - 1).float()
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)  # (H0, W0, 2) as (x, y)
        grid = grid.to(flat.device).unsqueeze(0).expand(flat.shape[0], H0, W0, 2)
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = ((gy.abs() <= 1)[:, None] & (gx.abs() <= 1)[None, :]).to(out.device)  # (H0, W0)
        out = out * inside.to(out.dtype)
        return out.reshape(*lead, H0, W0).to(maps.dtype if maps.is_floating_point() else torch.float32)


def _as_boxes(boxes: Any) -> Tensor:
    b = torch.as_tensor(boxes, dtype=torch.float32)
    if b.numel() == 0:
        return b.reshape(0, 4)
    if b.dim() != 2 or b.shape[1] != 4:
        raise ShapeError(f"boxes must be (N, 4) as (x0, y0, x1, y1), got {tuple(b.shape)}")
    return b


def _clip_boxes(boxes: Tensor, h: int, w: int) -> Tensor:
    return torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                        boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], 1)


def transform_boxes(boxes: Tensor, scale: Sequence[float], offset: Sequence[float],
                    size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Scale, shift and clip ``(N, 4)`` boxes: ``x' = x * sx - ox`` (same for y), clipped to ``size`` ``(H, W)``.

    Returns:
        ``(boxes, keep)``: the ``(N, 4)`` transformed boxes and a ``(N,)`` bool,
        False for boxes left with zero area.
    """
    sy, sx = float(scale[0]), float(scale[1])
    oy, ox = float(offset[0]), float(offset[1])
    b = _as_boxes(boxes)
    out = torch.stack([b[:, 0] * sx - ox, b[:, 1] * sy - oy, b[:, 2] * sx - ox, b[:, 3] * sy - oy], 1)
    out = _clip_boxes(out, int(size[0]), int(size[1]))
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return out, keep
