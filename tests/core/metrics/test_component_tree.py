"""The one-pass component tree against per-level scipy labelling and OpenCV contour areas."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medcam.metrics.component_tree import component_tree, contour_area_events, touch_levels

STRUCTURE = {4: ndimage.generate_binary_structure(2, 1), 8: np.ones((3, 3), bool)}


def _images(rng: np.random.Generator, n: int):
    for i in range(n):
        b = int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(1, 16, 2))
        top = int(rng.integers(1, 9)) if i % 2 else 40
        yield rng.integers(0, top + 1, (b, h, w))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_alive_nodes_are_the_components_of_every_level(connectivity):
    rng = np.random.default_rng(0)
    for x in _images(rng, 30):
        tree = component_tree(x, connectivity)
        for v in range(1, int(x.max()) + 1):
            alive = (tree.death < v) & (v <= tree.birth)
            for i in range(len(x)):
                labels, n = ndimage.label(x[i] >= v, STRUCTURE[connectivity])
                ref = []
                for k, sl in enumerate(ndimage.find_objects(labels), start=1):
                    ys, xs = np.nonzero(labels == k)
                    first = ys.min() * x.shape[2] + xs[ys == ys.min()].min()
                    touches = ys.min() == 0 or xs.min() == 0 or ys.max() == x.shape[1] - 1 or xs.max() == x.shape[2] - 1
                    ref.append((int(first), sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1, bool(touches)))
                mine = np.flatnonzero(alive & (tree.image == i))
                got = sorted((int(tree.first[k]), int(tree.x0[k]), int(tree.y0[k]), int(tree.x1[k]), int(tree.y1[k]),
                              bool(tree.border[k])) for k in mine)
                assert got == sorted(ref), (v, i)


def test_parents_contain_children_and_leaves_point_to_own_level():
    x = np.random.default_rng(1).integers(0, 6, (2, 12, 12))
    tree = component_tree(x, 8)
    child = np.flatnonzero(tree.parent >= 0)
    par = tree.parent[child]
    assert (tree.birth[par] < tree.birth[child]).all()
    assert (tree.death[child] == tree.birth[par]).all()
    assert (tree.x0[par] <= tree.x0[child]).all() and (tree.x1[par] >= tree.x1[child]).all()
    assert (tree.image[par] == tree.image[child]).all()
    flat = x.reshape(-1)
    has = tree.leaf >= 0
    assert (tree.birth[tree.leaf[has]] == flat[has]).all()
    assert (~has == (flat < 1)).all()


def test_touch_levels_is_when_a_pixel_reaches_the_outside():
    """For the tree of an inverted map: the level at which each pixel joins a border-touching component."""
    rng = np.random.default_rng(2)
    for x in _images(rng, 15):
        inv = int(x.max()) - x
        got = touch_levels(component_tree(inv, 4)).reshape(x.shape)
        ref = np.zeros_like(x)
        for v in range(int(inv.max()), 0, -1):
            for i in range(len(x)):
                labels, _ = ndimage.label(inv[i] >= v, STRUCTURE[4])
                edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
                reach = np.isin(labels, edge[edge > 0])
                ref[i][reach & (ref[i] == 0)] = v
        np.testing.assert_array_equal(got, ref)


def test_contour_area_equals_opencv_contour_area():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(2, 14, 2))
        x = rng.integers(0, 4, (1, h, w))
        # fill holes per level so that each component is its own filled set
        filled = np.zeros_like(x)
        for v in range(1, 4):
            filled[0][ndimage.binary_fill_holes(x[0] >= v, STRUCTURE[4])] = v
        tree = component_tree(filled, 8)
        area2 = contour_area_events(tree, filled)
        for v in range(1, 4):
            contours = cv2.findContours((filled[0] >= v).astype(np.uint8), cv2.RETR_EXTERNAL,
                                        cv2.CHAIN_APPROX_SIMPLE)[0]
            ref = sorted((int(c[0][0][1]) * w + int(c[0][0][0]), 2 * cv2.contourArea(c)) for c in contours)
            alive = np.flatnonzero((tree.death < v) & (v <= tree.birth))
            assert sorted((int(tree.first[k]), float(area2[k])) for k in alive) == ref


def test_large_and_deep_trees_match_labelling_at_sampled_levels():
    """A 2-pixel-wide spiral ramp (one component growing pixel by pixel: long union-find paths) and a
    noisy 120 x 130 map: the number of components and their boxes at sampled levels equal scipy's."""
    rng = np.random.default_rng(5)
    h, w = 60, 64
    spiral = np.zeros((h, w), dtype=np.int64)
    order = np.argsort(np.hypot(*np.mgrid[:h, :w] - np.array([h / 2, w / 2])[:, None, None]).ravel(), kind="stable")
    spiral.ravel()[order] = np.arange(h * w, 0, -1)  # rings fill from the centre outwards
    noisy = rng.integers(0, 256, (2, 120, 130))
    for x in (spiral[None], noisy):
        tree = component_tree(x, 8)
        for v in np.unique(np.linspace(1, x.max(), 17).astype(np.int64)):
            alive = (tree.death < v) & (v <= tree.birth)
            for i in range(len(x)):
                labels, n = ndimage.label(x[i] >= v, STRUCTURE[8])
                ref = sorted((sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
                             for sl in ndimage.find_objects(labels))
                mine = np.flatnonzero(alive & (tree.image == i))
                got = sorted((int(tree.x0[k]), int(tree.y0[k]), int(tree.x1[k]), int(tree.y1[k])) for k in mine)
                assert got == ref


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        component_tree(np.zeros((3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="connectivity"):
        component_tree(np.zeros((1, 3, 3), dtype=np.uint8), 6)
    with pytest.raises(ValueError, match="non-negative"):
        component_tree(-np.ones((1, 3, 3), dtype=np.int64))
