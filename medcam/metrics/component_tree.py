"""Component trees: the connected components of every threshold of a map, in one pass.

Thresholding a map at a falling level only adds pixels, so components only
grow and merge: the components of all upper level sets ``{x >= v}`` form a tree
(the *max-tree*; Salembier, Oliveras & Garrido, IEEE TIP 1998). It is built by
a compiled union-find sweep over the pixels in decreasing value order (Berger
et al., ICIP 2007; Najman & Couprie, IEEE TIP 2006), one pass per image
(:mod:`medcam.metrics._tree_kernels`), and node attributes (bounding box,
first pixel, border contact, contour area) are folded up the tree in the same
compiled code. The cost is one pass over the pixels whatever the number of
levels or of thresholds evaluated afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _tree_kernels as kernels

__all__ = ["ComponentTree", "component_tree", "contour_area_events", "touch_levels"]


@dataclass(frozen=True)
class ComponentTree:
    """The nodes of the max-tree of a batch of integer images ``x`` ``(B, H, W)``.

    Node ``k`` is a connected component of ``{x >= v}`` in image ``image[k]``
    for every level ``death[k] < v <= birth[k]``: it appears at level
    ``birth[k]`` and, at level ``death[k]``, grows or merges into
    ``parent[k]`` (``-1`` for roots, whose ``death`` is ``-1``). The nodes of
    each image form one block, numbered by decreasing level, so a parent
    always has a larger index than its children.

    Attributes:
        image, birth, death, parent: ``(K,)`` int64.
        x0, y0, x1, y1: ``(K,)`` int64 *inclusive* pixel extents of the component.
        first: ``(K,)`` int64 raster index ``y * W + x`` of its first pixel.
        border: ``(K,)`` bool, whether it touches the image border.
        leaf: ``(B * H * W,)`` int64, the node created when each pixel was
            added (``-1`` for pixels below ``min_level``).
        shape: ``(B, H, W)``.
    """

    image: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    parent: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    first: np.ndarray
    border: np.ndarray
    leaf: np.ndarray
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.birth)

    def subtree_sum(self, own: np.ndarray) -> np.ndarray:
        """Sum a per-node quantity over each node's subtree, ``(K,)`` -> ``(K,)``."""
        return kernels.fold_sum(np.ascontiguousarray(own, dtype=np.int64), self.parent)


def component_tree(x: np.ndarray, connectivity: int = 8, *, min_level: int = 1) -> ComponentTree:
    """Build the max-tree of integer images.

    Args:
        x: ``(B, H, W)`` non-negative integer array (e.g. uint8 levels).
        connectivity: 8 (diagonal neighbours connect) or 4.
        min_level: pixels below this level are never foreground and are left
            out (the default 1 skips level 0, which no strict threshold at or
            above 0 can select).

    Returns:
        the :class:`ComponentTree` of ``x``.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be (B, H, W), got shape {x.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    if x.size and int(x.min()) < 0:
        raise ValueError("x must be non-negative")
    image, birth, death, parent, x0, y0, x1, y1, first, border, leaf = kernels.build_tree(
        np.ascontiguousarray(x, dtype=np.int32), connectivity, min_level)
    return ComponentTree(image=image, birth=birth, death=death, parent=parent, x0=x0, y0=y0, x1=x1, y1=y1,
                         first=first, border=border.astype(bool), leaf=leaf, shape=tuple(x.shape))


def touch_levels(tree: ComponentTree) -> np.ndarray:
    """For each pixel, the highest level at which its component touches the border.

    Returns ``(B * H * W,)`` int64: the birth level of the first node on the
    pixel's path to the root that touches the image border (0 if none does, or
    if the pixel is in no node). For the tree of an inverted map (background
    components), this is when a pixel becomes connected to the outside.
    """
    return kernels.reach_levels(tree.birth, tree.parent, tree.border, tree.leaf)


def contour_area_events(tree: ComponentTree, x: np.ndarray) -> np.ndarray:
    """Twice the area enclosed by each node's outer contour, ``(K,)`` int64.

    OpenCV's ``contourArea`` of the outer border of an 8-connected component
    (a polygon through boundary pixel centres) equals the number of 2x2 pixel
    windows inside the component with its holes filled, counting a full
    window as 1 and a window with three filled pixels as 1/2 (windows with two
    or fewer filled pixels enclose no area). ``x`` must be the image the tree
    was built on, with holes already filled (a component's filled set is then
    the component itself). A window gets its third filled pixel at the level
    of its second-smallest value, and its fourth at its smallest; each event
    belongs to the node created at that level around the pixel that completes it.
    """
    b, h, w = x.shape
    if h < 2 or w < 2:
        return np.zeros(len(tree), dtype=np.int64)
    own = kernels.window_events(np.ascontiguousarray(x, dtype=np.int64), tree.leaf, len(tree))
    return tree.subtree_sum(own)
