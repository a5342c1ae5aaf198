"""Map operations of the WSOL plugin against independent references (scipy, hand-made maps)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from medcam.errors import ShapeError
from medcam_wsol.maps import class_weights, foreground_boxes, gaussian_pdf, minmax, select, student_t_pdf


def test_minmax_per_map_and_constant_map():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 9.0]], [[2.0, 2.0], [2.0, 2.0]]]])  # (1, 2, 2, 2)
    out = minmax(x)
    assert torch.allclose(out[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]), atol=1e-6)
    assert torch.equal(out[0, 1], torch.zeros(2, 2))


def test_pdfs_match_scipy():
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert np.allclose(gaussian_pdf(x, 0.3, 0.2).numpy(), stats.norm.pdf(x.numpy(), 0.3, 0.2))
    for nu in (1.0, 5.0, 30.0):
        assert np.allclose(student_t_pdf(x, nu).numpy(), stats.t.pdf(x.numpy(), nu))
    with pytest.raises(ValueError, match="nu must be positive"):
        student_t_pdf(x, 0.0)


def test_class_weights_label_multihot_and_topk():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.0], [0.7, 0.2, 0.3, 0.8]])
    w = class_weights(torch.tensor([2, 0]), scores, top_k=3)
    assert torch.equal(w, torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
    w = class_weights(None, scores, top_k=2)
    assert torch.allclose(w, torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5]]))
    w = class_weights(None, scores, top_k=10)  # capped at K
    assert torch.allclose(w, torch.full((2, 4), 0.25))
    multi = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])  # second row: no positive -> top-1
    w = class_weights(multi, scores, top_k=1)
    assert torch.allclose(w, torch.tensor([[1 / 3, 0.0, 1 / 3, 1 / 3], [0.0, 0.0, 0.0, 1.0]]))
    with pytest.raises(ShapeError, match="multi-hot"):
        class_weights(torch.zeros(2, 3), scores, 1)
    with pytest.raises(ValueError, match="out of range"):
        class_weights(torch.tensor([0, 4]), scores, 1)


def test_select_is_weighted_class_mean():
    maps = torch.rand(2, 3, 4, 5)
    w = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    out = select(maps, w)
    assert out.shape == (2, 1, 4, 5)
    assert torch.allclose(out[0, 0], (maps[0, 0] + maps[0, 1]) / 2)
    assert torch.allclose(out[1, 0], maps[1, 2])


def test_foreground_boxes_largest_component():
    m = torch.zeros(1, 8, 8)
    m[0, 1:3, 1:3] = 1.0        # small blob
    m[0, 4:8, 3:7] = 0.9        # larger blob
    (box,) = foreground_boxes(m, (8, 8), threshold=0.5)
    assert box.tolist() == [[3.0, 4.0, 7.0, 8.0]]
    # resized to the input: the 8x8 map covers a 32x32 image; compare with scipy on the same resize
    big = torch.nn.functional.interpolate(minmax(m)[:, None], size=(32, 32), mode="bilinear",
                                          align_corners=False)[0, 0]
    labels, n = ndimage.label(big.numpy() > 0.5, structure=np.ones((3, 3)))
    sizes = ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    (box,) = foreground_boxes(m[:, None], (32, 32), threshold=0.5)
    assert box.tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]


def test_foreground_boxes_constant_map_is_whole_image_and_errors():
    (box,) = foreground_boxes(torch.full((1, 4, 4), 0.3), (16, 20), threshold=0.83)
    assert box.tolist() == [[0.0, 0.0, 20.0, 16.0]]
    with pytest.raises(ValueError, match="threshold"):
        foreground_boxes(torch.rand(1, 4, 4), (4, 4), threshold=1.0)
    with pytest.raises(ShapeError):
        foreground_boxes(torch.rand(1, 2, 4, 4), (4, 4), threshold=0.5)
