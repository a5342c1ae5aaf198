"""Similarity of two batches of maps: Pearson, Spearman rank correlation, SSIM (batched torch).

Used by the model-randomisation sanity check (Adebayo et al., NeurIPS 2018),
which compares maps of the trained model with maps of a randomised one, and by
Coherency (Poppi et al., CVPR Workshops 2021).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .perturb import gaussian_kernel

__all__ = ["average_ranks", "pearson", "spearman", "ssim"]


def average_ranks(values: Tensor) -> Tensor:
    """``(B, N)`` float64 ranks ``1..N`` of each row, ties sharing the mean of their ranks (``scipy.stats.rankdata``)."""
    flat = values.double()
    ordered, order = torch.sort(flat, dim=1, stable=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(dim=1) - 1                                       # (B, N) group index
    position = torch.arange(1, flat.shape[1] + 1, dtype=torch.float64, device=flat.device).expand_as(flat)
    total = torch.zeros_like(flat).scatter_add_(1, group, position)
    count = torch.zeros_like(flat).scatter_add_(1, group, torch.ones_like(flat))
    mean_rank = (total / count.clamp_min(1)).gather(1, group)
    return torch.empty_like(flat).scatter_(1, order, mean_rank)


def pearson(a: Tensor, b: Tensor, eps: float = 0.0) -> Tensor:
    """``(B,)`` Pearson correlation of the flattened rows of ``a`` and ``b`` (NaN for a constant row unless ``eps``)."""
    x = a.flatten(1).double()
    y = b.flatten(1).double()
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    n = max(x.shape[1] - 1, 1)
    cov = (x * y).sum(dim=1) / n
    std = (x.pow(2).sum(dim=1) / n).sqrt() * (y.pow(2).sum(dim=1) / n).sqrt()
    return cov / (std + eps)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """``(B,)`` Spearman rank correlation: Pearson correlation of the average ranks (NaN for a constant map)."""
    return pearson(average_ranks(a.flatten(1)), average_ranks(b.flatten(1)))


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """``(B,)`` mean structural similarity of maps ``(B, H, W)`` (Wang et al., IEEE TIP 2004, eqs. 13 and 17).

    Local statistics under an ``window`` x ``window`` Gaussian window (``sigma``),
    population (co)variances, ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2`` with
    ``L = data_range``, averaged over the windows that lie inside the map
    (``skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``). Maps smaller than the window use the
    largest odd window that fits.
    """
    x = a.double()[:, None]
    y = b.double()[:, None]
    size = min(window, x.shape[-2] - (x.shape[-2] + 1) % 2, x.shape[-1] - (x.shape[-1] + 1) % 2)
    kernel = gaussian_kernel(sigma, size, x.device)
    kernel2d = (kernel[:, None] * kernel[None, :])[None, None]

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel2d)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return index.flatten(1).mean(dim=1)
