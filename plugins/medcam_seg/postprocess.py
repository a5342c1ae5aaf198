"""From a segmenter's masks to components, boxes and box regions, batched.

Every box operation comes from :mod:`medcam.boxes` (connected components,
component boxes, union box, box regions); this module puts them behind one call
for any segmenter:

    from medcam_seg.postprocess import predict_boxes
    result = predict_boxes(segmenter, images, threshold=0.5, min_area=20)
    result.boxes[b]            # (n_b, 4) boxes of image b's components
    result.union               # (B, 4) box around all foreground of each image
    result.region("upper")     # (B, H, W) upper half of each union box

Boxes are ``(x0, y0, x1, y1)`` in pixels of the mask, with exclusive ``x1``/``y1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from medcam.boxes import Region, component_boxes, connected_components, region_mask, union_box
from medcam.errors import ShapeError

__all__ = ["MaskBoxes", "mask_boxes", "predict_boxes", "remove_small_components"]


@dataclass
class MaskBoxes:
    """Components and boxes of a batch of masks.

    Attributes:
        masks: ``(B, H, W)`` bool, the masks after ``min_area`` filtering.
        labels: ``(B, H, W)`` int64 component labels (0 background, ``1..n_b``).
        counts: ``(B,)`` number of components ``n_b`` per image.
        boxes: one ``(n_b, 4)`` float tensor per image; row ``i`` boxes component ``i + 1``.
        areas: one ``(n_b,)`` int64 tensor per image: pixels per component.
        union: ``(B, 4)`` box around all foreground of each image (the whole image, or zeros,
            for an empty mask, as chosen by ``empty``).
        has_foreground: ``(B,)`` bool, whether the mask has any pixel.
    """

    masks: Tensor
    labels: Tensor
    counts: Tensor
    boxes: list[Tensor]
    areas: list[Tensor]
    union: Tensor
    has_foreground: Tensor

    def region(self, region: Region | Sequence[Region]) -> Tensor:
        """``(B, H, W)`` bool pixels of ``region`` of each union box: ``"inside"``, ``"upper"``/``"lower"``
        half, ``"outside"`` or ``"image"`` (one rule, or one per image); see :func:`medcam.boxes.region_mask`."""
        return region_mask(self.union, self.masks.shape[-2:], region)

    def largest(self) -> Tensor:
        """``(B, 4)`` box of each image's largest component (zeros when there is none)."""
        out = torch.zeros(len(self.boxes), 4, device=self.masks.device)
        for b, (boxes, areas) in enumerate(zip(self.boxes, self.areas)):
            if len(areas):
                out[b] = boxes[int(areas.argmax())]
        return out


def _area_table(labels: Tensor, counts: Tensor) -> Tensor:
    """``(B, max n_b + 1)`` pixel count of each label (column 0: background)."""
    b = labels.shape[0]
    size = int(counts.max()) + 1 if counts.numel() else 1
    areas = torch.zeros(b, size, dtype=torch.long, device=labels.device)
    return areas.scatter_add_(1, labels.reshape(b, -1), torch.ones_like(labels.reshape(b, -1)))


def remove_small_components(masks: Tensor, min_area: int, connectivity: int = 8) -> Tensor:
    """Masks ``(B, H, W)`` without the connected components smaller than ``min_area`` pixels."""
    if min_area <= 1:
        return masks if masks.dtype == torch.bool else masks > 0
    labels, counts = connected_components(masks, connectivity)
    keep = _area_table(labels, counts) >= min_area
    keep[:, 0] = False
    return keep.gather(1, labels.reshape(labels.shape[0], -1)).view_as(labels)


def mask_boxes(masks: Tensor, *, min_area: int = 0, connectivity: int = 8,
               empty: Literal["image", "zero"] = "image") -> MaskBoxes:
    """Connected components, their boxes and the union box of each mask.

    Args:
        masks: ``(B, H, W)`` bool (or ``> 0`` is foreground), e.g.
            :meth:`medcam.model.MedcamSegmenter.predict_mask` of a 1-class segmenter.
        min_area: drop components with fewer pixels first (0 keeps all).
        connectivity: 8 (default) or 4.
        empty: union box of an empty mask: the whole image (default) or zeros.
    """
    if not isinstance(masks, Tensor) or masks.dim() != 3:
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ShapeError(f"masks must be (B, H, W); got {shape} (for (B, K, H, W) masks pass masks[:, k])")
    if isinstance(min_area, bool) or not isinstance(min_area, int) or min_area < 0:
        raise ValueError(f"min_area must be a non-negative integer, got {min_area!r}")
    fg = remove_small_components(masks, min_area, connectivity)
    labels, counts = connected_components(fg, connectivity)
    return MaskBoxes(masks=fg, labels=labels, counts=counts, boxes=component_boxes(labels, counts),
                     areas=[row[1: int(n) + 1] for row, n in zip(_area_table(labels, counts), counts)], union=union_box(fg, empty=empty),
                     has_foreground=fg.flatten(1).any(1))


@torch.no_grad()
def predict_boxes(segmenter: Any, images: Tensor, *, threshold: float = 0.5, class_index: int = 0,
                  min_area: int = 0, connectivity: int = 8, empty: Literal["image", "zero"] = "image") -> MaskBoxes:
    """Segment ``images`` and box the result.

    Args:
        segmenter: a :class:`~medcam.model.MedcamSegmenter` (anything with ``predict_mask``).
        images: ``(B, in_chans, H, W)`` float in [0, 1].
        threshold: foreground is ``sigmoid(logit) > threshold``.
        class_index: which mask channel to box for a multi-class segmenter.
        min_area, connectivity, empty: as in :func:`mask_boxes`.
    """
    masks = segmenter.predict_mask(images, threshold=threshold)
    if masks.dim() == 4:
        if not 0 <= class_index < masks.shape[1]:
            raise ValueError(f"class_index {class_index} out of range for {masks.shape[1]} mask channels")
        masks = masks[:, class_index]
    return mask_boxes(masks, min_area=min_area, connectivity=connectivity, empty=empty)
