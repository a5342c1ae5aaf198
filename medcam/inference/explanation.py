"""What :class:`medcam.inference.Explainer` computes for one image (:class:`Explanation`), and the small
helpers its records share: image names, boxes back in original pixels, one-line failure reasons."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import MedcamError

__all__ = ["Explanation", "failure_reason", "device_of", "name_of", "to_original"]


@dataclass
class Explanation:
    """Everything computed for one image, on its picture grid ``(h, w)``.

    The picture grid is the original ``(H0, W0)`` for images of at most
    ``render_size`` pixels per side, else the original reduced by the smallest
    integer factor ``q`` that fits (``(h, w) = ceil((H0, W0) / q)``). The
    record's boxes and ``image_size`` are in original pixels either way.

    Attributes:
        record: the JSON-ready result (see :mod:`medcam.inference.record`), without file paths.
        original: ``(h, w, C)`` float32 in [0, 1], the image as read.
        heatmap: ``(h, w)`` float attribution map in [0, 1] (CPU).
        saliency: ``(h, w, 3)`` uint8, the colorized map.
        overlay: ``(h, w, 3)`` uint8, the map over the image with the attribution boxes.
        mask: ``(h, w)`` bool segmenter mask (CPU), or None without a segmenter.
        mask_overlay: ``(h, w, 3)`` uint8, the mask over the image with its boxes, or None.
        segmenter_heatmap: ``(h, w)`` float map in [0, 1] of what the segmenter looked at to segment its
            region (``segmenter_method``), or None.
        segmenter_overlay: ``(h, w, 3)`` uint8, that map over the image with the mask's boxes, or None.
        factor: ``q``, original pixels per picture pixel (1 for images within ``render_size``).
    """

    record: dict[str, Any]
    original: np.ndarray
    heatmap: Tensor
    saliency: np.ndarray
    overlay: np.ndarray
    mask: Tensor | None = None
    mask_overlay: np.ndarray | None = None
    factor: int = 1
    segmenter_heatmap: Tensor | None = None
    segmenter_overlay: np.ndarray | None = None

    def pictures(self) -> dict[str, np.ndarray]:
        """``{"saliency": ..., "overlay": ..., "mask": ..., "segmap": ...}`` (mask only with a segmenter,
        segmap only with a segmenter method)."""
        out = {"saliency": self.saliency, "overlay": self.overlay}
        if self.mask_overlay is not None:
            out["mask"] = self.mask_overlay
        if self.segmenter_overlay is not None:
            out["segmap"] = self.segmenter_overlay
        return out


def device_of(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


def name_of(image: Any, name: str | None) -> str:
    if name is not None:
        return str(name)
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return "<image>"


def to_original(boxes: Any, factor: int, size: tuple[int, int]) -> Tensor:
    """``(N, 4)`` boxes on the picture grid -> original pixels (times ``factor``, clipped to ``size`` ``(H0, W0)``)."""
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if factor == 1:
        return b
    h0, w0 = size
    return (b * factor).clamp(min=0).minimum(torch.tensor([w0, h0, w0, h0], dtype=torch.float32))


def failure_reason(err: BaseException) -> str:
    """A one-line reason for a fail record: medcam's own message, or the exception type and message."""
    text = " ".join(str(err).split())
    if isinstance(err, (MedcamError, FileNotFoundError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}"
