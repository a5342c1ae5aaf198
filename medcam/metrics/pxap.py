"""Pixel localization metrics against masks: PxAP and the pixel IoU curve.

PxAP (Choe et al., "Evaluating Weakly Supervised Object Localization Methods
Right", CVPR 2020, Sec. 4.2) is the area under the pixel precision-recall
curve of the thresholded score map ``{s >= tau_l}``:

    PxPrec(tau) = |{s >= tau} ∩ {T = 1}| / |{s >= tau}|
    PxRec(tau)  = |{s >= tau} ∩ {T = 1}| / |{T = 1}|
    PxAP = sum_l PxPrec(tau_l) (PxRec(tau_l) - PxRec(tau_{l-1}))

summed over all pixels of all images (not averaged per image), in percent.
As in the reference ``MaskEvaluator`` (clovaai/wsolevaluation), scores are
binned with edges ``[tau_0 = 0, tau_1, ..., tau_{T-1}, 1, 2, 3]`` (so a score
of exactly 1 falls in ``[1, 2)``), the curve is read from the reversed
cumulative bin counts, and points with no predicted pixel are skipped.
Mask pixels equal to ``ignore_value`` (255 in the reference) count nowhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, ShapeError
from ._inputs import as_masks, cam_thresholds, check_unit_maps, normalize_maps, as_maps

_CHUNK_PIXELS = 1 << 18  # pixels per chunk of maps (2 MB of float64 scores)

__all__ = ["pxap", "pxap_histograms", "pxap_from_histograms", "pixel_iou_curves", "score_bins"]


def score_bins(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Bin of each score: ``i`` for ``tau_i <= s < tau_{i+1}``, ``T`` for ``1 <= s < 2``, as ``np.histogram``.

    The edges are ``[tau_0, ..., tau_{T-1}, 1, 2, 3]``. For the usual evenly
    spaced thresholds a first guess ``floor(s / step)`` is corrected against
    the actual edges until ``edge[i] <= s < edge[i + 1]`` (one or two passes),
    which gives ``np.searchsorted(edges, s, side="right") - 1`` exactly in
    linear time; other thresholds use the binary search itself.
    """
    edges = np.append(thresholds, [1.0, 2.0, 3.0])
    n = len(thresholds)
    step = thresholds[1] - thresholds[0] if n > 1 else 0.0
    if n < 2 or thresholds[0] != 0 or not np.allclose(np.diff(thresholds), step):
        return np.searchsorted(edges, scores, side="right") - 1
    guess = np.clip(np.floor(scores / step), 0, n).astype(np.int64)
    while True:
        low = edges[guess] > scores
        if not low.any():
            break
        guess -= low
    while True:
        high = edges[guess + 1] <= scores
        if not high.any():
            break
        guess += high
    return guess


def _prepare(maps: Any, masks: Any, normalize: bool, ignore_value: int | None) -> tuple[np.ndarray, ...]:
    scores = normalize_maps(maps) if normalize else as_maps(maps)
    if not normalize:
        check_unit_maps(scores)
    positive, counted = as_masks(masks, scores.shape, ignore_value)
    return scores, positive, counted


def pxap_histograms(maps: Any, masks: Any, *, interval: float = 0.01, ignore_value: int | None = 255,
                    normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Score histograms over ground-truth positive and negative pixels (what PxAP accumulates).

    Args:
        maps: ``(B, H, W)`` maps (torch or NumPy); raw if ``normalize``, else in [0, 1].
        masks: ``(B, H, W)`` bool, or integer with 0 / 1 / ``ignore_value``.
        interval: threshold step (``np.arange(0, 1, interval)``).
        ignore_value: integer mask value whose pixels are not counted.
        normalize: min-max normalize each map first (the reference's protocol).

    Returns:
        ``(positive_hist, negative_hist)``, each ``(T + 2,)`` float64.
    """
    taus = cam_thresholds(interval)
    n_bins = len(taus) + 2
    pos = np.zeros(n_bins)
    neg = np.zeros(n_bins)
    for chunk_maps, chunk_masks in _chunks(maps, masks):
        scores, positive, counted = _prepare(chunk_maps, chunk_masks, normalize, ignore_value)
        bins = score_bins(scores, taus)
        pos += np.bincount(bins[positive & counted], minlength=n_bins)
        neg += np.bincount(bins[~positive & counted], minlength=n_bins)
    return pos, neg


def _chunks(maps: Any, masks: Any):
    """Maps and masks a few images at a time, so the float64 temporaries stay in cache."""
    n = len(maps)
    if len(masks) != n:
        raise ShapeError(f"masks has {len(masks)} entries for {n} maps")
    per = max(1, _CHUNK_PIXELS // max(1, int(np.prod(maps.shape[1:])) if n else 1))
    for s in range(0, max(n, 1), per):
        yield maps[s:s + per], masks[s:s + per]


def pxap_from_histograms(positive_hist: np.ndarray, negative_hist: np.ndarray) -> float:
    """PxAP in percent from accumulated histograms (the reference's ``MaskEvaluator.compute``)."""
    num_true = positive_hist.sum()
    tp = positive_hist[::-1].cumsum()
    fn = num_true - tp
    fp = negative_hist[::-1].cumsum()
    if ((tp + fn) <= 0).all():
        raise DataError("PxAP needs at least one positive ground-truth pixel")
    if ((tp + fp) <= 0).all():
        raise DataError("PxAP needs at least one predicted pixel")
    predicted = tp + fp
    nonzero = predicted != 0
    precision = np.divide(tp, predicted, out=np.full_like(tp, np.nan), where=nonzero)
    recall = tp / (tp + fn)
    auc = (precision[1:] * np.diff(recall))[nonzero[1:]].sum()
    auc *= 100
    return float(auc)


def pxap(maps: Any, masks: Any, *, interval: float = 0.01, ignore_value: int | None = 255,
         normalize: bool = True) -> float:
    """PxAP: pixel average precision of maps against masks, in percent (see the module docstring).

    Args:
        maps: ``(B, H, W)`` maps (torch or NumPy); raw if ``normalize``, else in [0, 1].
        masks: ``(B, H, W)`` bool, or integer with 0 / 1 / ``ignore_value``.
        interval: threshold step; 0.01 gives 100 thresholds, 0.001 gives 1000.
        ignore_value: integer mask value whose pixels are not counted.
        normalize: min-max normalize each map first.
    """
    return pxap_from_histograms(*pxap_histograms(maps, masks, interval=interval, ignore_value=ignore_value,
                                                 normalize=normalize))


def pixel_iou_curves(maps: Any, masks: Any, *, interval: float = 0.01, ignore_value: int | None = 255,
                     normalize: bool = True) -> np.ndarray:
    """Per-image IoU of the thresholded map ``{s >= tau}`` with the mask, at every threshold.

    Uses the same bins as PxAP, so ``{s >= tau_l}`` counts bins ``l`` and up.
    An image whose mask and thresholded map are both empty scores 1.

    Returns:
        ``(B, T)`` float64.
    """
    taus = cam_thresholds(interval)
    n_bins = len(taus) + 2
    rows = []
    for chunk_maps, chunk_masks in _chunks(maps, masks):
        scores, positive, counted = _prepare(chunk_maps, chunk_masks, normalize, ignore_value)
        b = len(scores)
        bins = score_bins(scores, taus) + n_bins * np.arange(b)[:, None, None]
        pos = np.bincount(bins[positive & counted], minlength=b * n_bins).reshape(b, n_bins)
        neg = np.bincount(bins[~positive & counted], minlength=b * n_bins).reshape(b, n_bins)
        tp = pos[:, ::-1].cumsum(axis=1)[:, ::-1][:, :len(taus)].astype(np.float64)
        fp = neg[:, ::-1].cumsum(axis=1)[:, ::-1][:, :len(taus)].astype(np.float64)
        union = pos.sum(axis=1, keepdims=True) + fp
        rows.append(np.divide(tp, union, out=np.ones_like(tp), where=union > 0))
    return np.concatenate(rows)
