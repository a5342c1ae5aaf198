"""Image perturbations the faithfulness metrics share: pixel rankings, removal sets, blur.

Maps are ``(B, H, W)`` (higher = more relevant), images ``(B, C, H, W)`` in [0, 1].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["relevance_rank", "removal_count", "road_removal", "gaussian_blur", "gaussian_kernel", "SUBSTRATES", "substrate"]

#: What removed pixels become (deletion) or what inserted pixels start from (insertion).
SUBSTRATES = ("black", "blur", "mean")


def relevance_rank(maps: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``(B, H*W)`` int64: the rank of each pixel in decreasing map value (0 = most relevant).

    Ties are broken by a random order drawn from ``generator`` (CPU), so no image
    region is favoured (a ReLU'd map is often zero over most of the image); without
    a generator they keep raster order.
    """
    flat = maps.flatten(1)
    n = flat.shape[1]
    if generator is not None:
        shuffle = torch.argsort(torch.rand(flat.shape, generator=generator), dim=1).to(flat.device)
        shuffled = flat.gather(1, shuffle)
        order = shuffle.gather(1, torch.sort(shuffled, dim=1, descending=True, stable=True).indices)
    else:
        order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=flat.device).expand_as(order))
    return rank


def removal_count(pixels: int, fraction: float, most_relevant: bool) -> int:
    """Pixels ROAD removes for ``fraction``: as many as pytorch-grad-cam's percentile rule removes from a map
    with distinct values (MoRF: ``map >= q_{1-r}``, LeRF: ``map <= q_r``, NumPy's linear-interpolation quantiles)."""
    if most_relevant:
        return pixels - math.ceil((1.0 - fraction) * (pixels - 1) - 1e-9)
    return math.floor(fraction * (pixels - 1) + 1e-9) + 1


def road_removal(maps: Tensor, fraction: float, most_relevant: bool,
                 generator: torch.Generator | None = None) -> Tensor:
    """``(B, H, W)`` bool: the pixels ROAD removes for ``fraction`` of the image.

    The :func:`removal_count` most (MoRF) or least (LeRF) relevant pixels by
    :func:`relevance_rank`: for maps with distinct values exactly pytorch-grad-cam's
    percentile sets; tied pixels at the boundary are chosen at random, so a map that
    is zero over most of the image still removes the requested fraction
    (pytorch-grad-cam removes all tied pixels, i.e. every pixel in that case).
    """
    b, h, w = maps.shape
    count = removal_count(h * w, fraction, most_relevant)
    rank = relevance_rank(maps if most_relevant else -maps, generator)
    return (rank < count).view(b, h, w)


def gaussian_kernel(sigma: float, size: int, device: torch.device | None = None) -> Tensor:
    """``(size,)`` normalized 1-D Gaussian weights ``exp(-x^2 / 2 sigma^2)``, ``x`` centred on the middle tap."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    weights = torch.exp(-x.pow(2) / (2 * sigma * sigma))
    return weights / weights.sum()


def gaussian_blur(images: Tensor, sigma: float = 5.0, size: int = 11) -> Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` images, ``size`` taps per axis, edges replicated."""
    if sigma <= 0 or size < 1:
        return images
    kernel = gaussian_kernel(sigma, size, images.device).to(images.dtype)
    c = images.shape[1]
    pad = size // 2
    out = F.pad(images, (pad, size - 1 - pad, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, size).expand(c, 1, 1, size).contiguous(), groups=c)
    out = F.pad(out, (0, 0, pad, size - 1 - pad), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, size, 1).expand(c, 1, size, 1).contiguous(), groups=c)


def substrate(images: Tensor, kind: str, sigma: float = 5.0, size: int = 11) -> Tensor:
    """``(B, C, H, W)``: black (zeros), the blurred image, or each image's per-channel mean."""
    if kind == "black":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images, sigma, size)
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    raise ValueError(f"unknown substrate {kind!r}; expected one of {', '.join(SUBSTRATES)}")


def step_counts(pixels: int, steps: int) -> Tensor:
    """``(S + 1,)`` int64 pixel counts ``0, n, 2n, ..., pixels`` with ``n = ceil(pixels / steps)``."""
    per_step = math.ceil(pixels / steps)
    counts = torch.arange(0, pixels + per_step, per_step).clamp(max=pixels)
    return torch.unique_consecutive(counts)
