"""Shared input handling: min-max normalization as the reference, quantization, thresholds, masks, boxes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.errors import DataError, ShapeError
from medcam.metrics._inputs import as_box_lists, as_masks, cam_thresholds, normalize_maps, quantize


def test_normalize_equals_in_place_reference():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 7, 9)).astype(np.float32)
    maps[1] = 2.5                 # constant: zeros
    maps[2, 3, 3] = np.nan        # NaN: zeros
    got = normalize_maps(torch.from_numpy(maps))
    for m, g in zip(maps, got):
        cam = m.astype(np.float64)  # the reference casts to float64, then works in place
        if np.isnan(cam).any() or cam.min() == cam.max():
            cam = np.zeros_like(cam)
        else:
            cam -= cam.min()
            cam /= cam.max()
        np.testing.assert_array_equal(g, cam)
    assert got.dtype == np.float64 and got[0].max() == 1.0 and got[0].min() == 0.0


def test_quantize_truncates_and_thresholds():
    assert quantize(np.array([0.0, 0.5, 0.999, 1.0])).tolist() == [0, 127, 254, 255]
    assert len(cam_thresholds(0.01)) == 100 and len(cam_thresholds(0.001)) == 1000
    assert cam_thresholds(0.25).tolist() == [0.0, 0.25, 0.5, 0.75]


def test_masks_and_boxes_formats():
    positive, counted = as_masks(np.array([[[0, 1, 255]]], dtype=np.uint8), (1, 1, 3), 255)
    assert positive.tolist() == [[[False, True, False]]] and counted.tolist() == [[[True, True, False]]]
    assert as_masks(np.ones((1, 2, 2), bool), (1, 2, 2))[1].all()
    assert [b.shape for b in as_box_lists(torch.zeros(3, 4), 3)] == [(1, 4)] * 3
    assert [b.shape for b in as_box_lists(np.zeros((2, 5, 4)), 2)] == [(5, 4)] * 2
    assert [b.shape for b in as_box_lists([[0, 0, 1, 1], torch.zeros(2, 4)], 2)] == [(1, 4), (2, 4)]
    with pytest.raises(ShapeError, match=r"\(m, 4\)"):
        as_box_lists([[0, 0, 1]], 1)
    with pytest.raises(DataError, match="non-finite"):
        as_box_lists([[0, 0, np.nan, 1]], 1)
    with pytest.raises(ShapeError, match="bool or integer"):
        as_masks(np.zeros((1, 2, 2)), (1, 2, 2))
