"""Map operations of the foreground-prediction-map methods (SR, BAS) and their box readout.

Notation: maps are ``(B, K, h, w)`` (one per class) or ``(B, 1, h, w)``;
``minmax`` normalizes each ``(h, w)`` map on its own.

* :func:`minmax`: ``(x - min) / (max - min + eps)`` per map, the
  ``normalize_tensor`` of the SR and BAS code (Wang et al., Sci Rep 2024;
  Wu et al., CVPR 2022).
* :func:`gaussian_pdf`, :func:`student_t_pdf`: the two modulation functions of SR's
  non-linear modulation module,
  ``N(x; mu, sigma) = exp(-(x - mu)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)`` and
  ``f_nu(x) = Gamma((nu + 1) / 2) / (sqrt(nu pi) Gamma(nu / 2)) (1 + x^2 / nu)^(-(nu + 1) / 2)``.
* :func:`class_weights` / :func:`select`: ``M = mean_{c in P} FPM[c]`` as a weighted
  sum, with ``P`` the label in training and the top-k predicted classes at test.
* :func:`foreground_boxes`: the box of a map as SR/BAS inference computes it.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from medcam.attribution import resize_maps
from medcam.boxes import map_to_boxes
from medcam.errors import ShapeError

__all__ = ["minmax", "gaussian_pdf", "student_t_pdf", "class_weights", "select", "foreground_boxes"]


def minmax(maps: Tensor, eps: float = 1e-10) -> Tensor:
    """``(x - min) / (max - min + eps)`` over the last two dimensions of ``maps`` ``(..., h, w)``.

    A constant map becomes zeros. Differentiable (min and max are subgradients).
    """
    flat = maps.flatten(-2)
    low = flat.amin(-1, keepdim=True)
    high = flat.amax(-1, keepdim=True)
    return ((flat - low) / (high - low + eps)).view_as(maps)


def gaussian_pdf(x: Tensor, mean: Tensor | float, std: Tensor | float) -> Tensor:
    """The normal density ``exp(-(x - mean)^2 / (2 std^2)) / (sqrt(2 pi) std)``, elementwise."""
    return torch.exp(-(x - mean) ** 2 / (2 * std ** 2)) / (math.sqrt(2 * math.pi) * std)


def student_t_pdf(x: Tensor, nu: float) -> Tensor:
    """The Student-t density with ``nu`` degrees of freedom, elementwise.

    ``Gamma((nu+1)/2) / (sqrt(nu pi) Gamma(nu/2)) * (1 + x^2/nu)^(-(nu+1)/2)``.
    On ``x`` in [0, 1] it decreases, so after min-max it is largest where ``x`` is smallest.
    """
    if not nu > 0:
        raise ValueError(f"nu must be positive, got {nu}")
    log_c = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    return math.exp(log_c) * torch.pow(1 + x * x / nu, -(nu + 1) / 2)


def class_weights(labels: Tensor | None, scores: Tensor, top_k: int) -> Tensor:
    """The classes ``P`` a class-agnostic map averages, as weights ``(B, K)`` whose rows sum to 1.

    Args:
        labels: ``(B,)`` class indices (``P = {y}``), ``(B, K)`` multi-hot targets
            (``P`` = the positive classes; a row without a positive falls back to
            the top-k), or ``None`` (``P`` = the ``top_k`` highest ``scores``).
        scores: ``(B, K)`` class scores (used detached).
        top_k: how many predicted classes form ``P`` without labels (capped at K).
    """
    b, k = scores.shape
    top = scores.detach().topk(min(int(top_k), k), dim=1).indices
    predicted = torch.zeros_like(scores, dtype=torch.float32).scatter_(1, top, 1.0)
    predicted = predicted / predicted.sum(1, keepdim=True)
    if labels is None:
        return predicted.to(scores.dtype)
    labels = labels.to(scores.device)
    if labels.dim() == 1:
        if labels.shape[0] != b:
            raise ShapeError(f"labels has {labels.shape[0]} entries for a batch of {b}")
        if labels.is_floating_point():
            raise ShapeError(f"single-label labels must be integer class indices, got dtype {labels.dtype}")
        bad = (labels < 0) | (labels >= k)
        if bool(bad.any()):
            raise ValueError(f"label {int(labels[bad][0])} is out of range for {k} classes")
        return F.one_hot(labels.long(), k).to(scores.dtype)
    if labels.dim() == 2 and tuple(labels.shape) == (b, k):
        positive = (labels > 0).to(scores.dtype)
        count = positive.sum(1, keepdim=True)
        return torch.where(count > 0, positive / count.clamp_min(1), predicted.to(scores.dtype))
    raise ShapeError(f"labels must be (B,) class indices or (B, K) = ({b}, {k}) multi-hot targets, "
                     f"got {tuple(labels.shape)}")


def select(maps: Tensor, weights: Tensor) -> Tensor:
    """``sum_c weights[b, c] maps[b, c]``: maps ``(B, K, h, w)``, weights ``(B, K)`` -> ``(B, 1, h, w)``."""
    return torch.einsum("bk,bkhw->bhw", weights.to(maps.dtype), maps)[:, None]


def foreground_boxes(maps: Tensor, size: Sequence[int], threshold: float) -> list[Tensor]:
    """The box of each map, as SR and BAS inference compute it.

    The map is min-max normalized, resized (bilinear) to ``size``, thresholded
    (``> threshold``; SR uses 0.83, BAS 0.15) and the box of its largest
    8-connected component is returned.

    Args:
        maps: ``(B, h, w)`` or ``(B, 1, h, w)`` foreground maps.
        size: ``(H, W)`` of the input image the boxes refer to.
        threshold: in [0, 1), relative to the normalized map.

    Returns:
        one ``(1, 4)`` float tensor per image, ``(x0, y0, x1, y1)`` in input pixels
        with exclusive ``x1``/``y1``; a map with nothing above the threshold (a
        constant map) gives the whole image, as the reference code does.
    """
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ShapeError(f"maps must be (B, h, w) or (B, 1, h, w), got {tuple(maps.shape)}")
    h, w = int(size[0]), int(size[1])
    resized = resize_maps(minmax(maps.detach().float()), (h, w))
    boxes = map_to_boxes(resized, float(threshold), mode="largest")
    whole = torch.tensor([[0.0, 0.0, float(w), float(h)]], device=maps.device)
    return [bx if bx.shape[0] else whole.clone() for bx in boxes]
