"""PxAP and the pixel IoU curve: hand-computed cases and a per-image histogram reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.errors import DataError, ShapeError
from medcam.metrics import normalize_maps, pixel_iou_curves, pxap
from medcam.metrics.pxap import pxap_from_histograms, pxap_histograms


def reference_pxap(scores: np.ndarray, masks: np.ndarray, interval: float) -> float:
    """wsolevaluation's MaskEvaluator restated: per-image np.histogram, then the AP sum."""
    taus = list(np.arange(0, 1, interval))
    edges = np.append(taus, [1.0, 2.0, 3.0])
    pos_hist = np.zeros(len(taus) + 2)
    neg_hist = np.zeros(len(taus) + 2)
    for s, m in zip(scores, masks):
        pos_hist += np.histogram(s[m == 1], bins=edges)[0]
        neg_hist += np.histogram(s[m == 0], bins=edges)[0]
    tp = pos_hist[::-1].cumsum()
    fn = pos_hist.sum() - tp
    fp = neg_hist[::-1].cumsum()
    keep = (tp + fp) != 0
    with np.errstate(invalid="ignore"):
        precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return float((precision[1:] * np.diff(recall))[keep[1:]].sum() * 100)


@pytest.mark.parametrize("interval", [0.01, 0.001])
def test_pxap_equals_the_histogram_reference(interval):
    rng = np.random.default_rng(0)
    maps = rng.random((6, 20, 24)) ** 3
    masks = (rng.random((6, 20, 24)) < 0.3).astype(np.uint8)
    masks[rng.random((6, 20, 24)) < 0.1] = 255  # ignored pixels
    masks[0] = 0  # an image with no foreground still counts its negatives
    got = pxap(torch.from_numpy(maps), torch.from_numpy(masks), interval=interval)
    assert got == reference_pxap(normalize_maps(maps), masks, interval)


def test_pxap_by_hand():
    s = np.array([[[0.9, 0.6, 0.3, 0.0]]])
    # precision 1/2 at both operating points: AP = 0.5 * 0.5 + 0.5 * 0.5
    assert pxap(s, np.array([[[True, False, True, False]]]), interval=0.5, normalize=False) == 50.0
    # perfect ranking
    assert pxap(s, np.array([[[True, True, False, False]]]), interval=0.5, normalize=False) == 100.0


def test_ignored_pixels_count_nowhere():
    s = np.array([[[0.9, 0.6, 0.3, 0.0]]])
    with_ignore = pxap(s, np.array([[[1, 255, 1, 0]]], dtype=np.uint8), interval=0.5, normalize=False)
    without = pxap(s[:, :, [0, 2, 3]], np.array([[[1, 1, 0]]], dtype=np.uint8), interval=0.5, normalize=False)
    assert with_ignore == without


def test_histograms_accumulate_over_batches():
    rng = np.random.default_rng(1)
    maps, masks = rng.random((8, 10, 10)), rng.random((8, 10, 10)) < 0.4
    parts = [pxap_histograms(maps[i:i + 3], masks[i:i + 3]) for i in range(0, 8, 3)]
    pos = sum(p for p, _ in parts)
    neg = sum(n for _, n in parts)
    assert pxap_from_histograms(pos, neg) == pxap(maps, masks)


def test_pixel_iou_curves():
    s = np.array([[[0.9, 0.6, 0.3, 0.0]]])
    got = pixel_iou_curves(s, np.array([[[True, True, False, False]]]), interval=0.5, normalize=False)
    assert got.tolist() == [[0.5, 1.0]]  # tau = 0: all 4 pixels; tau = 0.5: exactly the mask
    rng = np.random.default_rng(2)
    maps, masks = rng.random((3, 9, 7)), rng.random((3, 9, 7)) < 0.5
    curves = pixel_iou_curves(maps, masks, interval=0.1)
    scores = normalize_maps(maps)
    for i in range(3):
        for j, tau in enumerate(np.arange(0, 1, 0.1)):
            pred = scores[i] >= tau
            assert curves[i, j] == (pred & masks[i]).sum() / (pred | masks[i]).sum()


def test_bad_input():
    with pytest.raises(DataError, match="positive ground-truth"):
        pxap(np.random.rand(1, 4, 4), np.zeros((1, 4, 4), bool))
    with pytest.raises(DataError, match="outside"):
        pxap(np.random.rand(1, 4, 4), np.full((1, 4, 4), 7, dtype=np.uint8))
    with pytest.raises(ShapeError, match="shape"):
        pxap(np.random.rand(1, 4, 4), np.zeros((1, 4, 5), bool))
