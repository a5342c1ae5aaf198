"""Model-free localization baselines: the floor every attribution method must clear.

* ``center_box``: a fixed box centred in the image, 1 inside and 0 outside.
  Its width and height are fractions of the image's (``fraction=[fw, fh]``).
  By default (``train_fit``) they are fitted on the *training* split's lesion
  boxes: the centred box with the best box accuracy, averaged over IoU 0.3 /
  0.5 / 0.7, on a 5 % grid (:func:`fit_box_fraction`); ``train_median`` takes
  the median relative lesion width and height instead (:func:`box_fraction`).
  Nothing is fitted on held-out images. Thresholding the map at any CAM
  threshold gives the same box.
* ``center_gaussian``: ``exp(-((x - cx)^2 / (2 (s W)^2) + (y - cy)^2 / (2 (s H)^2)))``
  with ``s = sigma`` (default 0.25): the threshold sweep of the WSOL metrics
  then tries every centred box with the image's aspect ratio (the centre
  prior; Choe et al., CVPR 2020, use a centre-Gaussian baseline the same way).
* ``random_map``: uniform noise on a ``grid x grid`` lattice (default 8),
  bilinearly upsampled, i.e. a random map as coarse as a CAM; each image's map
  depends only on ``(seed, image key)``, not on the batch.

Every function returns maps ``(B, H, W)`` float32 in [0, 1] at the model input
size (the frame the lesion masks and boxes are given in).
"""
from __future__ import annotations

import zlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medcam.errors import SpecError
from medcam.registry import did_you_mean

__all__ = ["box_fraction", "fit_box_fraction", "center_box", "center_box_maps", "center_gaussian_maps",
           "random_maps", "baseline_maps", "resolve_params", "usable_baselines", "BASELINE_PARAMS"]

#: Parameters of each baseline and their defaults.
BASELINE_PARAMS: dict[str, dict[str, Any]] = {
    "center_box": {"fraction": "train_fit"},
    "center_gaussian": {"sigma": 0.25},
    "random_map": {"grid": 8},
}


def box_fraction(boxes: Sequence[Tensor], size: Sequence[int]) -> tuple[float, float]:
    """Median relative ``(width, height)`` of the largest box of each image.

    Args:
        boxes: one ``(N_i, 4)`` tensor ``(x0, y0, x1, y1)`` (exclusive ``x1``/``y1``) per image;
            images without boxes are skipped.
        size: ``(H, W)`` of the images the boxes refer to.

    Raises:
        ValueError: no image has a box.
    """
    h, w = int(size[0]), int(size[1])
    rel = []
    for b in boxes:
        b = torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4)
        if b.shape[0] == 0:
            continue
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        x0, y0, x1, y1 = b[int(areas.argmax())].tolist()
        rel.append(((x1 - x0) / w, (y1 - y0) / h))
    if not rel:
        raise ValueError("box_fraction: no image has a lesion box")
    arr = np.asarray(rel)
    return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))


def center_box(size: Sequence[int], fraction: Sequence[float]) -> tuple[int, int, int, int]:
    """The centred box ``(x0, y0, x1, y1)`` (exclusive ``x1``/``y1``) of relative size ``fraction = (fw, fh)``."""
    h, w = int(size[0]), int(size[1])
    fw, fh = (float(f) for f in fraction)
    if not (0 < fw <= 1 and 0 < fh <= 1):
        raise SpecError(f"center_box.fraction: expected two fractions in (0, 1], got {list(fraction)}")
    bw, bh = max(1, round(fw * w)), max(1, round(fh * h))
    x0, y0 = (w - bw) // 2, (h - bh) // 2
    return x0, y0, x0 + bw, y0 + bh


def fit_box_fraction(boxes: Sequence[Tensor], size: Sequence[int], *, deltas: Sequence[float] = (0.3, 0.5, 0.7),
                     step: float = 0.05) -> tuple[float, float]:
    """The relative size ``(fw, fh)`` of the centred box with the best mean box accuracy on ``boxes``.

    For each ``(fw, fh)`` on the grid ``step, 2 step, ..., 1``, an image counts as
    localized at ``delta`` when the centred box's IoU with one of its boxes is
    at least ``delta``; the score is the mean over ``deltas`` of the fraction
    of localized images; ties go to the highest mean IoU (then the smallest ``fw``, ``fh``).

    Args:
        boxes: one ``(N_i, 4)`` tensor per image (training split); images without boxes are skipped.
        size: ``(H, W)`` the boxes refer to.

    Raises:
        ValueError: no image has a box.
    """
    from medcam.metrics import box_iou

    gts = [torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4) for b in boxes]
    gts = [b for b in gts if b.shape[0]]
    if not gts:
        raise ValueError("fit_box_fraction: no image has a lesion box")
    grid = [round(step * k, 10) for k in range(1, int(round(1 / step)) + 1)]
    candidates = [(fw, fh) for fw in grid for fh in grid]
    cand = torch.tensor([center_box(size, f) for f in candidates], dtype=torch.float64)       # (C, 4)
    best = torch.stack([box_iou(cand, g).amax(1) for g in gts], 1)                            # (C, N)
    score = torch.stack([(best >= d).double().mean(1) for d in deltas]).mean(0)              # (C,)
    mean_iou = torch.where(score == score.max(), best.mean(1), torch.full_like(score, -1.0))
    return candidates[int(mean_iou.argmax())]


def center_box_maps(n: int, size: Sequence[int], fraction: Sequence[float]) -> Tensor:
    """``(n, H, W)``: 1 inside the centred box of relative size ``fraction = (fw, fh)``, else 0."""
    h, w = int(size[0]), int(size[1])
    x0, y0, x1, y1 = center_box(size, fraction)
    out = torch.zeros(h, w)
    out[y0:y1, x0:x1] = 1.0
    return out.expand(n, h, w).clone()


def center_gaussian_maps(n: int, size: Sequence[int], sigma: float = 0.25) -> Tensor:
    """``(n, H, W)`` centred Gaussian, standard deviations ``sigma * W`` and ``sigma * H`` (pixel centres)."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma <= 0:
        raise SpecError(f"center_gaussian.sigma: expected a positive number, got {sigma!r}")
    h, w = int(size[0]), int(size[1])
    ys = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2) / (sigma * h)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2) / (sigma * w)
    g = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).float()
    return g.expand(n, h, w).clone()


def _key_seed(seed: int, key: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode("utf-8"))) % (2**63 - 1)


def random_maps(keys: Sequence[str], size: Sequence[int], grid: int = 8, seed: int = 0) -> Tensor:
    """``(len(keys), H, W)`` uniform noise on a ``grid x grid`` lattice, bilinearly upsampled.

    Each map is a function of ``(seed, key)`` only (e.g. the image's file name).
    """
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise SpecError(f"random_map.grid: expected a positive integer, got {grid!r}")
    h, w = int(size[0]), int(size[1])
    coarse = []
    for key in keys:
        g = torch.Generator().manual_seed(_key_seed(seed, str(key)))
        coarse.append(torch.rand(1, min(grid, h), min(grid, w), generator=g))
    if not coarse:
        return torch.zeros(0, h, w)
    stacked = torch.stack(coarse)
    return F.interpolate(stacked, size=(h, w), mode="bilinear", align_corners=False)[:, 0]


def resolve_params(part: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline part ``{"name": ..., **params}`` with defaults filled; unknown parameters are errors."""
    name = part["name"]
    if name not in BASELINE_PARAMS:
        raise SpecError(f"unknown baseline {name!r}{did_you_mean(str(name), BASELINE_PARAMS)}")
    known = BASELINE_PARAMS[name]
    params = {k: v for k, v in part.items() if k != "name"}
    for key in params:
        if key not in known:
            raise SpecError(f"baselines.{name}.{key}: unknown parameter{did_you_mean(key, known)} "
                            f"(parameters: {', '.join(known)})")
    return {"name": name, **known, **params}


def usable_baselines(parts: Sequence[Mapping[str, Any]], train_boxes: Sequence[Tensor]
                     ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The resolved baseline parts that can run, and why the others cannot.

    A ``center_box`` fitted on the training split (``train_fit`` / ``train_median``) needs
    training boxes; box-only data sets such as NIH ChestX-ray14 annotate test images only.

    Returns:
        ``(resolved parts, {name: reason})``.
    """
    usable, skipped = [], {}
    for raw in parts:
        part = resolve_params(raw)
        if part["name"] == "center_box" and part["fraction"] in ("train_fit", "train_median") and not train_boxes:
            skipped[part["name"]] = (f"fraction '{part['fraction']}' is fitted on the training split's lesion boxes "
                                     f"and the training images have none")
            continue
        usable.append(part)
    return usable, skipped


def baseline_maps(part: Mapping[str, Any], keys: Sequence[str], size: Sequence[int], *, seed: int = 0,
                  train_boxes: Sequence[Tensor] | None = None) -> tuple[Tensor, dict[str, Any]]:
    """Maps ``(len(keys), H, W)`` of a resolved baseline part for images ``keys`` at ``size``.

    Args:
        part: from :func:`resolve_params`.
        keys: one identifier per image (seeds ``random_map``).
        size: ``(H, W)``.
        seed: the benchmark seed.
        train_boxes: the training split's lesion boxes at ``size`` (for ``fraction: train_fit | train_median``).

    Returns:
        ``(maps, fitted)``: ``fitted`` holds the values chosen on the training split (e.g. ``fraction_value``).
    """
    name = part["name"]
    n = len(keys)
    if name == "center_box":
        fraction = part["fraction"]
        fitted: dict[str, Any] = {}
        if fraction in ("train_fit", "train_median"):
            if not train_boxes:
                raise ValueError(f"center_box with fraction '{fraction}' needs the training split's lesion boxes")
            fit = fit_box_fraction if fraction == "train_fit" else box_fraction
            fraction = fit(train_boxes, size)
            fitted["fraction_value"] = [float(f) for f in fraction]
        if isinstance(fraction, str) or not isinstance(fraction, Sequence) or len(fraction) != 2:
            raise SpecError(f"center_box.fraction: expected 'train_fit', 'train_median' or [width, height] "
                            f"fractions, got {fraction!r}")
        return center_box_maps(n, size, fraction), fitted
    if name == "center_gaussian":
        return center_gaussian_maps(n, size, part["sigma"]), {}
    return random_maps(keys, size, part["grid"], seed), {}
