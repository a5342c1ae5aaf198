"""Channels-last input for convolutional backbones on the CPU.

oneDNN, PyTorch's CPU convolution library, computes in a channels-last
(NHWC) layout; a channels-first (NCHW) input is reordered before and after
every convolution. Passing the input channels-last keeps every convolution,
batch norm and activation of a CNN in that layout (PyTorch propagates the
memory format) and saves those reorders; ``benchmarks/attribution_speed.py``
measures the effect on whole attribution calls (docs/benchmarks.md). The
numbers are the same up to float32 summation order.

Only backbones whose registry entry declares ``layout="map"`` (CNNs) get it:
token models reshape their maps with ``view``, which a channels-last tensor
does not allow.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor, nn

__all__ = ["prefers_channels_last", "backbone_input"]


@lru_cache(maxsize=None)
def _layout_of(backbone: str) -> str | None:
    from .registry import backbones

    try:
        return backbones.info(backbone).get("layout")
    except KeyError:
        return None


def prefers_channels_last(model: nn.Module, images: Tensor) -> bool:
    """Whether ``model``'s backbone runs faster on a channels-last copy of ``images`` ``(B, C, H, W)``:
    a medcam model on the CPU whose backbone is registered with ``layout="map"``."""
    spec = getattr(model, "spec", None)
    if images.device.type != "cpu" or images.dim() != 4 or not isinstance(spec, dict):
        return False
    backbone = spec.get("backbone")
    name = backbone.get("name") if isinstance(backbone, dict) else backbone
    return isinstance(name, str) and _layout_of(name) == "map"


def backbone_input(model: nn.Module, images: Tensor) -> Tensor:
    """``images`` ``(B, C, H, W)`` in the memory format the model's backbone computes fastest in
    (a channels-last copy for CNNs on the CPU, see :func:`prefers_channels_last`; else unchanged)."""
    if prefers_channels_last(model, images):
        return images.contiguous(memory_format=torch.channels_last)
    return images
