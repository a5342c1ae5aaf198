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

import numpy as np
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


def _shifted(labels: Tensor, fill: int, connectivity: int) -> list[Tensor]:
    """The 4 or 8 neighbour views of ``labels`` ``(B, H, W)``, padded with ``fill``."""
    h, w = labels.shape[1:]
    padded = F.pad(labels, (1, 1, 1, 1), value=fill)
    offsets = [(0, 1), (1, 0), (1, 2), (2, 1)]
    if connectivity == 8:
        offsets += [(0, 0), (0, 2), (2, 0), (2, 2)]
    return [padded[:, dy:dy + h, dx:dx + w] for dy, dx in offsets]


def _label_scipy(fg: Tensor, connectivity: int) -> tuple[Tensor, Tensor]:
    """``scipy.ndimage.label`` over the whole batch at once (CPU tensors)."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)  # no connection across the batch axis
    structure[1] = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    labels_np, _ = ndimage.label(fg.numpy(), structure=structure)
    labels = torch.from_numpy(labels_np.astype(np.int64, copy=False))
    b = labels.shape[0]
    # scipy numbers over the flattened batch, so image b's labels follow image b-1's
    seen = torch.cummax(labels.reshape(b, -1).amax(1), 0).values
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), seen[:-1]])
    counts = seen - offsets
    labels = torch.where(labels > 0, labels - offsets.view(b, 1, 1), labels)
    return labels, counts


def _label_torch(fg: Tensor, connectivity: int) -> tuple[Tensor, Tensor]:
    """Union-find by min-root hooking and pointer jumping, in torch on any device.

    Every foreground pixel points to a pixel of its own component with a smaller
    or equal flat index. Each round hooks every root onto the smallest root seen
    among its pixels' neighbours, then jumps pointers until each pixel points at
    a root. At the fixed point each component points at its first pixel in
    raster order, which gives ``scipy.ndimage.label``'s numbering.
    """
    b, h, w = fg.shape
    n = b * h * w
    device = fg.device
    sentinel = n  # background points here; larger than every pixel index
    index = torch.arange(n, device=device)
    flat_fg = fg.reshape(-1)
    parent = torch.cat([torch.where(flat_fg, index, sentinel), torch.full((1,), sentinel, device=device)])
    while True:
        current = parent[:n].clone()
        smallest = torch.stack(_shifted(current.view(b, h, w), sentinel, connectivity)).amin(0).reshape(-1)
        smallest = torch.where(flat_fg, torch.minimum(smallest, current), sentinel)
        if torch.equal(smallest, current):
            break
        parent.scatter_reduce_(0, current, smallest, "amin")  # hook the roots
        parent[:n] = torch.minimum(parent[:n], smallest)
        while True:
            jumped = parent[parent]
            if torch.equal(jumped, parent):
                break
            parent = jumped
    roots = parent[:n]
    is_root = flat_fg & (roots == index)
    rank = torch.cumsum(is_root.long(), 0)  # 1-based rank of each root over the batch
    counts = is_root.view(b, -1).sum(1)
    offsets = torch.cumsum(counts, 0) - counts
    image = torch.div(index, h * w, rounding_mode="floor")
    labels = torch.where(flat_fg, rank[roots.clamp_max(n - 1)] - offsets[image], 0)
    return labels.view(b, h, w), counts


def connected_components(masks: Tensor, connectivity: int = 8) -> tuple[Tensor, Tensor]:
    """Label the connected foreground components of each mask.

    Args:
        masks: ``(B, H, W)`` bool (or > 0 is foreground).
        connectivity: 8 (default; diagonal neighbours connect) or 4.

    Returns:
        ``(labels, counts)``: ``labels`` ``(B, H, W)`` int64 with 0 for background
        and ``1..n_b`` for the components of image ``b``, numbered in raster
        order of each component's first pixel (exactly as ``scipy.ndimage.label``
        numbers them); ``counts`` ``(B,)`` int64, the ``n_b``. CPU tensors are
        labelled by ``scipy.ndimage.label``; on other devices a torch union-find
        gives the same labels without leaving the device.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    fg = _as_masks(masks)
    b, h, w = fg.shape
    if b * h * w == 0:
        return (torch.zeros(fg.shape, dtype=torch.long, device=fg.device),
                torch.zeros(b, dtype=torch.long, device=fg.device))
    if fg.device.type == "cpu":
        return _label_scipy(fg, connectivity)
    return _label_torch(fg, connectivity)


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


def _component_areas(labels: Tensor, counts: Tensor) -> Tensor:
    """Pixel count of every component, ``(B, max(counts) + 1)`` with column 0 (background) zeroed."""
    b = labels.shape[0]
    size = int(counts.max()) + 1 if counts.numel() else 1
    flat = labels.reshape(b, -1)
    areas = torch.zeros(b, size, dtype=torch.long, device=labels.device)
    areas.scatter_add_(1, flat, torch.ones_like(flat))
    areas[:, 0] = 0
    return areas


def largest_component(masks: Tensor, connectivity: int = 8) -> Tensor:
    """Keep only the largest connected component (by pixel count) of each mask.

    Args:
        masks: ``(B, H, W)`` bool (or > 0 is foreground).
        connectivity: 8 or 4.

    Returns:
        ``(B, H, W)`` bool; ties go to the component whose first pixel comes
        first in raster order. An empty mask stays empty.
    """
    labels, counts = connected_components(masks, connectivity)
    best = _component_areas(labels, counts).argmax(1)
    b = labels.shape[0]
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
    if empty not in ("image", "zero"):
        raise ValueError(f"empty must be 'image' or 'zero', got {empty!r}")
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
    fill = (torch.tensor([0.0, 0.0, float(w), float(h)], device=fg.device) if empty == "image"
            else torch.zeros(4, device=fg.device))
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
    if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ShapeError(f"boxes must be a (B, 4) tensor, got {shape}")
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
        mode: ``"largest"`` connected component only (by pixel count; ties go
            to the first in raster order), or ``"all"`` components.
        connectivity: 8 (default) or 4.

    Returns:
        one ``(n_b, 4)`` float tensor per image, ``(x0, y0, x1, y1)`` with
        exclusive ``x1``/``y1`` (``n_b`` is 0 or 1 for ``"largest"``), components
        in :func:`connected_components` order.

    Note:
        WSOL evaluation (``medcam.metrics.max_box_acc``) picks the largest
        *OpenCV contour* instead, whose area is the polygon area through the
        boundary pixel centres, not the pixel count; see ``docs/metrics.md``.
    """
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        raise ShapeError(f"maps must be (B, H, W), got {tuple(maps.shape) if isinstance(maps, Tensor) else maps!r}")
    if mode not in ("largest", "all"):
        raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")
    labels, counts = connected_components(maps > threshold, connectivity)
    boxes = component_boxes(labels, counts)
    if mode == "all":
        return boxes
    best = (_component_areas(labels, counts).argmax(1) - 1).tolist()
    return [bx[i:i + 1] if n > 0 else bx for bx, i, n in zip(boxes, best, counts.tolist())]
