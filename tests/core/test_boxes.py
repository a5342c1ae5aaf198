"""medcam.boxes against scipy.ndimage and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from medcam.boxes import (_label_scipy, _label_torch, component_boxes, connected_components, largest_component,
                          map_to_boxes, region_mask, union_box)
from medcam.errors import ShapeError

STRUCTURE = {4: ndimage.generate_binary_structure(2, 1), 8: np.ones((3, 3), bool)}


def _spiral(n: int) -> np.ndarray:
    """One long 1-pixel-wide square spiral: a worst case for label propagation."""
    a = np.zeros((n, n), bool)
    lo, hi = 0, n - 1
    while hi - lo >= 2:
        a[lo, lo:hi + 1] = a[lo:hi + 1, hi] = a[hi, lo:hi + 1] = True
        a[lo + 2:hi + 1, lo] = True
        a[lo + 2, lo:lo + 3] = True
        lo, hi = lo + 2, hi - 2
    return a


def _random_masks(rng: np.random.Generator, n: int = 40):
    for _ in range(n):
        b = int(rng.integers(1, 5))
        h, w = (int(v) for v in rng.integers(1, 24, 2))
        masks = rng.random((b, h, w)) < rng.uniform(0.05, 0.95)
        masks[rng.random(b) < 0.25] = False  # some empty images between full ones
        yield masks


@pytest.mark.parametrize("connectivity", [4, 8])
def test_labels_equal_scipy_label(connectivity):
    rng = np.random.default_rng(0)
    for masks in _random_masks(rng):
        labels, counts = connected_components(torch.from_numpy(masks), connectivity)
        for i, m in enumerate(masks):
            ref, n = ndimage.label(m, STRUCTURE[connectivity])
            assert counts[i] == n
            np.testing.assert_array_equal(labels[i].numpy(), ref)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_torch_union_find_equals_scipy(connectivity):
    """The device path (used off the CPU) gives the same labels as scipy."""
    rng = np.random.default_rng(1)
    cases = list(_random_masks(rng, 25)) + [_spiral(40)[None], np.ones((2, 5, 7), bool), np.zeros((3, 4, 4), bool)]
    for masks in cases:
        fg = torch.from_numpy(masks)
        got, ref = _label_torch(fg, connectivity), _label_scipy(fg, connectivity)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


def test_spiral_is_one_component():
    labels, counts = connected_components(torch.from_numpy(_spiral(64)[None]))
    assert counts.tolist() == [1]
    assert (labels > 0).sum() == _spiral(64).sum()


def test_numbering_and_diagonals_by_hand():
    m = torch.tensor([[[1, 0, 0, 1],
                       [0, 1, 0, 0],
                       [0, 0, 0, 1]]], dtype=torch.bool)
    lab8, n8 = connected_components(m, 8)
    lab4, n4 = connected_components(m, 4)
    assert n8.tolist() == [3] and n4.tolist() == [4]
    assert lab8[0].tolist() == [[1, 0, 0, 2], [0, 1, 0, 0], [0, 0, 0, 3]]
    assert lab4[0].tolist() == [[1, 0, 0, 2], [0, 3, 0, 0], [0, 0, 0, 4]]


def test_component_boxes_equal_find_objects():
    rng = np.random.default_rng(2)
    for masks in _random_masks(rng, 20):
        boxes = component_boxes(*connected_components(torch.from_numpy(masks)))
        for i, m in enumerate(masks):
            ref = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(
                ndimage.label(m, STRUCTURE[8])[0])]
            assert [tuple(int(v) for v in row) for row in boxes[i].tolist()] == ref


def test_largest_component_by_pixel_count_and_ties():
    m = torch.zeros(2, 6, 6, dtype=torch.bool)
    m[0, 0, 0:3] = True  # 3 pixels
    m[0, 3:5, 3:5] = True  # 4 pixels: the largest
    m[1, 0, 0:2] = True  # tie of 2 and 2: the first in raster order wins
    m[1, 5, 4:6] = True
    out = largest_component(m)
    assert out[0].sum() == 4 and out[0, 3:5, 3:5].all()
    assert out[1].sum() == 2 and out[1, 0, 0:2].all()
    assert not largest_component(torch.zeros(1, 3, 3, dtype=torch.bool)).any()


def test_map_to_boxes_strict_threshold_and_modes():
    maps = torch.zeros(1, 5, 6)
    maps[0, 1, 1] = 0.5  # equal to the threshold: not foreground
    maps[0, 0:2, 3:6] = 0.9  # 6 pixels
    maps[0, 4, 0] = 0.7  # 1 pixel
    assert map_to_boxes(maps, 0.5, mode="all")[0].tolist() == [[3, 0, 6, 2], [0, 4, 1, 5]]
    assert map_to_boxes(maps, 0.5, mode="largest")[0].tolist() == [[3, 0, 6, 2]]
    assert map_to_boxes(maps, 0.95, mode="largest")[0].shape == (0, 4)


def test_union_box_and_empty_rules():
    m = torch.zeros(2, 4, 5, dtype=torch.bool)
    m[0, 1, 1] = m[0, 3, 3] = True
    assert union_box(m).tolist() == [[1, 1, 4, 4], [0, 0, 5, 4]]
    assert union_box(m, empty="zero")[1].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="empty"):
        union_box(m, empty="none")


def test_region_mask_by_hand():
    boxes = torch.tensor([[1.0, 0.0, 3.0, 4.0]] * 5)
    out = region_mask(boxes, (4, 4), ["inside", "upper", "lower", "outside", "image"])
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[0:4, 1:3] = True
    assert torch.equal(out[0], inside)
    assert out[1].nonzero().tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    assert out[2].nonzero().tolist() == [[2, 1], [2, 2], [3, 1], [3, 2]]
    assert torch.equal(out[3], ~inside)
    assert out[4].all()


def test_errors():
    with pytest.raises(ValueError, match="connectivity"):
        connected_components(torch.zeros(1, 2, 2, dtype=torch.bool), 6)
    with pytest.raises(ShapeError, match=r"\(B, H, W\)"):
        connected_components(torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ShapeError, match=r"\(B, H, W\)"):
        map_to_boxes(torch.zeros(1, 1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="mode"):
        map_to_boxes(torch.zeros(1, 2, 2), 0.5, mode="biggest")
    with pytest.raises(ShapeError, match=r"\(B, 4\)"):
        region_mask(torch.zeros(2, 3), (4, 4), "inside")
    with pytest.raises(ValueError, match="unknown region"):
        region_mask(torch.zeros(1, 4), (4, 4), "middle")
