"""Masks, connected components and boxes as batched torch operations.

Conventions (used everywhere in medcam):

* masks are ``(B, H, W)`` bool (or anything ``> 0`` is foreground);
* a box is ``(x0, y0, x1, y1)`` in pixels of the image it refers to, with
  ``x1``/``y1`` *exclusive* pixel edges: the single pixel at column 3, row 5 is
  ``(3, 5, 4, 6)``, and a box's area is ``(x1 - x0) * (y1 - y0)``. NIH
  ``[x, y, w, h]`` boxes are ``(x, y, x + w, y + h)``.
* connectivity is 8 (diagonal neighbours connect), as OpenCV contours and
  ``scipy.ndimage.label(structure=ones((3, 3)))``; 4 is available.

Everything runs on the tensors' device, vectorized over the batch.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ShapeError

__all__ = [
    "connected_components",
    "component_boxes",
    "largest_component",
    "union_box",
    "region_mask",
    "map_to_boxes",
    "Region",
]

Region = Literal["inside", "upper", "lower", "outside", "image"]
REGIONS: tuple[str, ...] = ("inside", "upper", "lower", "outside", "image")


def _as_masks(masks: Tensor, what: str = "masks") -> Tensor:
    if not isinstance(masks, Tensor) or masks.dim() != 3:
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ShapeError(f"{what} must be a (B, H, W) tensor, got {shape}")
    return masks if masks.dtype == torch.bool else masks > 0


def _neighbour_max(labels: Tensor, connectivity: int) -> Tensor:
    if connectivity == 8:
        return F.max_pool2d(labels[:, None], kernel_size=3, stride=1, padding=1)[:, 0]
    padded = F.pad(labels[:, None], (1, 1, 1, 1))[:, 0]
    centre = padded[:, 1:-1, 1:-1]
    return torch.stack([centre, padded[:, :-2, 1:-1], padded[:, 2:, 1:-1],
                        padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]]).amax(0)


def connected_components(masks: Tensor, connectivity: int = 8) -> tuple[Tensor, Tensor]:
    """Label the connected foreground components of each mask.

    Args:
        masks: ``(B, H, W)`` bool (or > 0 is foreground).
        connectivity: 8 (default) or 4.

    Returns:
        ``(labels, counts)``: ``labels`` ``(B, H, W)`` int64 with 0 for background
        and ``1..n_b`` for the components of image ``b``, numbered in raster
        order of each component's last pixel; ``counts`` ``(B,)`` the ``n_b``.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    fg = _as_masks(masks)
    b, h, w = fg.shape
    n = h * w
    if n == 0 or b == 0:
        return torch.zeros(fg.shape, dtype=torch.long, device=fg.device), torch.zeros(b, dtype=torch.long, device=fg.device)
    ids = torch.arange(1, n + 1, device=fg.device, dtype=torch.float64).view(1, h, w).expand(b, h, w)
    labels = torch.where(fg, ids, torch.zeros((), dtype=torch.float64, device=fg.device))
    flat_fg = fg.reshape(b, n)
    while True:
        grown = torch.where(fg, _neighbour_max(labels, connectivity), labels)
        # pointer jumping: a pixel labelled L adopts the label of pixel L (always >= L)
        flat = grown.reshape(b, n)
        for _ in range(8):
            pointer = (flat.long() - 1).clamp_min(0)
            jumped = torch.where(flat_fg, flat.gather(1, pointer), flat)
            if torch.equal(jumped, flat):
                break
            flat = jumped
        grown = flat.view(b, h, w)
        if torch.equal(grown, labels):
            break
        labels = grown
    labels = labels.long()
    key = labels + torch.arange(b, device=fg.device).view(b, 1, 1) * (n + 1)
    uniq, inverse = torch.unique(key, return_inverse=True)
    batch_of = torch.div(uniq, n + 1, rounding_mode="floor")
    is_fg = (uniq % (n + 1)) != 0
    counts = torch.zeros(b, dtype=torch.long, device=fg.device).scatter_add_(0, batch_of, is_fg.long())
    first = torch.cumsum(counts, 0) - counts  # global index of each image's first component
    rank = torch.cumsum(is_fg.long(), 0) - 1 - first[batch_of] + 1  # 1-based within image
    rank = torch.where(is_fg, rank, torch.zeros_like(rank))
    return rank[inverse].view(b, h, w), counts


def component_boxes(labels: Tensor, counts: Tensor) -> list[Tensor]:
    """Bounding boxes of labelled components.

    Args:
        labels, counts: the output of :func:`connected_components`.

    Returns:
        one ``(n_b, 4)`` float tensor per image, row ``i`` the box of component
        ``i + 1`` as ``(x0, y0, x1, y1)`` with exclusive ``x1``/``y1``.
    """
    b, h, w = labels.shape
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    ys = torch.arange(h, device=labels.device).view(1, h, 1).expand(b, h, w)
    xs = torch.arange(w, device=labels.device).view(1, 1, w).expand(b, h, w)
    fg = labels > 0
    slot = (labels - 1 + offsets.view(b, 1, 1))[fg]
    big = torch.full((total,), max(h, w) + 1, dtype=torch.long, device=labels.device)
    small = torch.full((total,), -1, dtype=torch.long, device=labels.device)
    x0 = big.clone().scatter_reduce_(0, slot, xs[fg], "amin")
    y0 = big.clone().scatter_reduce_(0, slot, ys[fg], "amin")
    x1 = small.clone().scatter_reduce_(0, slot, xs[fg], "amax") + 1
    y1 = small.clone().scatter_reduce_(0, slot, ys[fg], "amax") + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return list(torch.split(boxes, counts.tolist()))


def largest_component(masks: Tensor, connectivity: int = 8) -> Tensor:
    """Keep only the largest connected component of each mask ``(B, H, W)`` (ties: the first)."""
    labels, counts = connected_components(masks, connectivity)
    b = labels.shape[0]
    size = int(counts.max()) + 1 if counts.numel() else 1
    areas = torch.zeros(b, size, dtype=torch.long, device=labels.device)
    areas.scatter_add_(1, labels.reshape(b, -1), torch.ones_like(labels.reshape(b, -1)))
    areas[:, 0] = 0
    best = areas.argmax(1)
    return (labels == best.view(b, 1, 1)) & (labels > 0)


def union_box(masks: Tensor, *, empty: Literal["image", "zero"] = "image") -> Tensor:
    """The box around all foreground pixels of each mask (the union of its components).

    Args:
        masks: ``(B, H, W)``.
        empty: for a mask with no foreground, the whole image (default, as the
            seed lung-box code does) or an all-zero box.

    Returns:
        ``(B, 4)`` float boxes ``(x0, y0, x1, y1)``, exclusive ``x1``/``y1``.
    """
    fg = _as_masks(masks)
    b, h, w = fg.shape
    rows, cols = fg.any(2), fg.any(1)
    ar_h = torch.arange(h, device=fg.device)
    ar_w = torch.arange(w, device=fg.device)
    y0 = torch.where(rows, ar_h, h).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, w).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    none = ~rows.any(1)
    fill = torch.tensor([0.0, 0.0, float(w), float(h)], device=fg.device) if empty == "image" else torch.zeros(4, device=fg.device)
    return torch.where(none[:, None], fill, boxes)


def region_mask(boxes: Tensor, size: Sequence[int], region: Region | Sequence[Region]) -> Tensor:
    """Pixels of a region defined by a box, per image.

    Args:
        boxes: ``(B, 4)`` ``(x0, y0, x1, y1)`` pixel boxes (exclusive ends; fractional allowed).
        size: ``(H, W)`` of the mask to produce.
        region: one rule for all images, or one per image:
            ``"inside"`` the box; ``"upper"`` / ``"lower"`` the top / bottom half
            of the box (rows ``[y0, (y0+y1)/2)`` / ``[(y0+y1)/2, y1)``);
            ``"outside"`` everything but the box; ``"image"`` every pixel.

    Returns:
        ``(B, H, W)`` bool.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ShapeError(f"boxes must be (B, 4), got {tuple(boxes.shape)}")
    b = boxes.shape[0]
    h, w = int(size[0]), int(size[1])
    rules = [region] * b if isinstance(region, str) else list(region)
    if len(rules) != b:
        raise ShapeError(f"{len(rules)} region rules for {b} boxes")
    for r in rules:
        if r not in REGIONS:
            raise ValueError(f"unknown region '{r}' (one of {', '.join(REGIONS)})")
    x0, y0, x1, y1 = boxes.float().unbind(1)
    mid = (y0 + y1) / 2
    code = torch.tensor([REGIONS.index(r) for r in rules], device=boxes.device)
    top = torch.where(code == REGIONS.index("lower"), mid, y0)
    bottom = torch.where(code == REGIONS.index("upper"), mid, y1)
    ys = torch.arange(h, device=boxes.device).view(1, h, 1) + 0.5  # pixel centres
    xs = torch.arange(w, device=boxes.device).view(1, 1, w) + 0.5
    inside = ((ys >= top.view(b, 1, 1)) & (ys < bottom.view(b, 1, 1))
              & (xs >= x0.view(b, 1, 1)) & (xs < x1.view(b, 1, 1)))
    out = torch.where((code == REGIONS.index("outside")).view(b, 1, 1), ~inside, inside)
    return out | (code == REGIONS.index("image")).view(b, 1, 1)


def map_to_boxes(maps: Tensor, threshold: float, *, mode: Literal["largest", "all"] = "largest",
                 connectivity: int = 8) -> list[Tensor]:
    """Boxes of the regions where a map exceeds ``threshold`` (strictly).

    Args:
        maps: ``(B, H, W)`` attribution maps, already min-max normalized to [0, 1]
            if ``threshold`` is meant relative to the map's range.
        threshold: foreground is ``map > threshold``.
        mode: ``"largest"`` connected component only, or ``"all"`` components.

    Returns:
        one ``(n_b, 4)`` tensor per image (``n_b`` is 0 or 1 for ``"largest"``).
    """
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        raise ShapeError(f"maps must be (B, H, W), got {tuple(maps.shape) if isinstance(maps, Tensor) else maps!r}")
    fg = maps > threshold
    if mode == "largest":
        fg = largest_component(fg, connectivity)
    elif mode != "all":
        raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")
    labels, counts = connected_components(fg, connectivity)
    return component_boxes(labels, counts)
