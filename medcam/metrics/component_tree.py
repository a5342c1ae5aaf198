"""Component trees: the connected components of every threshold of a map, in one pass.

Thresholding a map at a falling level only adds pixels, so components only
grow and merge: the components of all upper level sets ``{x >= v}`` form a tree
(the *max-tree*; Salembier, Oliveras & Garrido, IEEE TIP 1998). We build it
with a union-find sweep over the pixels in decreasing value order (Najman &
Couprie, IEEE TIP 2006), one value level at a time: the pixels of a level and
the edges that become present at that level are added together, the unions of
the level are resolved by one sparse connected-components call on a graph of
the new pixels and the current roots they touch, and every component that
changed becomes a new node. Node attributes (bounding box,
first pixel, border contact, contour area) are then accumulated up the tree.
Integer maps with ``L`` levels need ``L`` steps, whatever the number of
thresholds evaluated afterwards.

Everything here is NumPy on the CPU and vectorized over a batch of images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

__all__ = ["ComponentTree", "component_tree", "contour_area_events", "touch_levels"]

_NO_NODE = -1


@dataclass(frozen=True)
class ComponentTree:
    """The nodes of the max-tree of a batch of integer images ``x`` ``(B, H, W)``.

    Node ``k`` is a connected component of ``{x >= v}`` in image ``image[k]``
    for every level ``death[k] < v <= birth[k]``: it appears at level
    ``birth[k]`` and, at level ``death[k]``, grows or merges into
    ``parent[k]`` (``-1`` for roots, whose ``death`` is ``-1``). Nodes are
    numbered in creation order, so a parent always has a larger index than
    its children.

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
        total = own.astype(np.int64, copy=True)
        for ids in self._groups_bottom_up():
            has = self.parent[ids] >= 0
            np.add.at(total, self.parent[ids[has]], total[ids[has]])
        return total

    def _groups_bottom_up(self) -> list[np.ndarray]:
        """Node ids grouped by birth level, deepest level first (children before parents)."""
        return _level_groups(self.birth)


def _level_groups(birth: np.ndarray) -> list[np.ndarray]:
    """Node ids grouped by birth level in creation order (children's groups before their parents')."""
    if len(birth) == 0:
        return []
    cuts = np.flatnonzero(np.diff(birth)) + 1  # nodes are created level by level, from the top
    return np.split(np.arange(len(birth)), cuts)


def _upper_neighbours(x: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Which neighbours each pixel joins when it is added: ``(bits, offsets)``.

    Bit ``d`` of ``bits`` (``(B * H * W,)`` uint8) is set when neighbour ``d``
    (flat offset ``offsets[d]``) lies in the same image and is already present
    when the pixel is added: higher, or equal and in the first half of the
    directions (so an edge inside a level is taken from one side only). With
    8-connectivity a diagonal neighbour is also skipped when one of the two
    other pixels of their 2x2 square is at least as high as the pair's lower
    end: the pair is then joined through that pixel at the same level, so no
    level's components change.
    """
    b, h, w = x.shape
    wide = np.int16 if x.size == 0 or int(x.max()) < 2 ** 15 - 1 else np.int64
    pad = np.full((b, h + 2, w + 2), -1, dtype=wide)  # outside the image: never present
    pad[:, 1:-1, 1:-1] = x

    def near(dy: int, dx: int) -> np.ndarray:
        return pad[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    centre = near(0, 0)
    forward = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    directions = forward + [(-dy, -dx) for dy, dx in forward]
    bits = np.zeros((b, h, w), dtype=np.uint8)
    for d, (dy, dx) in enumerate(directions):
        other = near(dy, dx)
        present = other >= centre if d < len(forward) else other > centre
        if dy and dx:  # a diagonal: needed only if both side pixels are below the pair's lower end
            present &= np.maximum(near(dy, 0), near(0, dx)) < np.minimum(centre, other)
        bits |= present.astype(np.uint8) << d
    offsets = np.array([dy * w + dx for dy, dx in directions], dtype=np.int64)
    return bits.reshape(-1), offsets


def _buckets(levels: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable order of ``levels`` by decreasing value, and the start of each level's run.

    Returns ``(order, starts)`` with ``starts`` of length ``top + 2``: the
    items of level ``v`` are ``order[starts[top - v]:starts[top - v + 1]]``.
    """
    key = (top - levels).astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int64)
    order = np.argsort(key, kind="stable")  # a radix sort for 16-bit keys
    counts = np.bincount(key, minlength=top + 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    return order, starts


class _UnionFind:
    """Current root of node ids, with path compression (vectorized)."""

    def __init__(self, size: int, dtype: type = np.int64) -> None:
        self.up = np.full(size, _NO_NODE, dtype=dtype)

    def find(self, nodes: np.ndarray) -> np.ndarray:
        roots = nodes.copy()
        pending = np.flatnonzero(self.up[roots] >= 0)
        while len(pending):
            roots[pending] = self.up[roots[pending]]
            pending = pending[self.up[roots[pending]] >= 0]
        moved = roots != nodes
        self.up[nodes[moved]] = roots[moved]
        return roots

    def find_unique(self, nodes: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """:meth:`find` for arrays with many repeats: each distinct node is chased once."""
        scratch[nodes] = np.arange(len(nodes), dtype=scratch.dtype)
        rep = scratch[nodes]
        distinct = np.flatnonzero(rep == np.arange(len(nodes)))
        if len(distinct) > 0.7 * len(nodes):
            return self.find(nodes)
        found = np.empty(len(nodes), dtype=nodes.dtype)
        found[distinct] = self.find(nodes[distinct])
        return found[rep]


def _components(n_vert: int, rows: np.ndarray, cols: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a small undirected graph given by sorted ``rows`` -> ``cols`` edges.

    The edge list is already in CSR order (``rows`` non-decreasing), so the
    sparse matrix is assembled without sorting and handed to
    ``scipy.sparse.csgraph.connected_components`` (weak connectivity).
    """
    indptr = np.zeros(n_vert + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n_vert), out=indptr[1:])
    graph = csr_array((np.ones(len(cols)), cols.astype(np.int32, copy=False), indptr), shape=(n_vert, n_vert))
    return connected_components(graph, directed=True, connection="weak")


def _sweep(flat: np.ndarray, bits: np.ndarray, offsets: np.ndarray, top: int,
           min_level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The union-find sweep: ``(leaf, parent, death, birth)`` of every pixel / node.

    Level by level from the top, the new pixels (value ``v``) are joined to
    their present neighbours: a neighbour of value ``v`` is a new vertex, a
    higher one stands for the current root of its component. The components
    of this small graph become the new nodes. The edges of all levels are
    generated at once, in the pixels' level order, so each level's edges are
    one contiguous slice.
    """
    n = flat.size
    idx = np.int32 if 2 * n < 2 ** 31 else np.int64
    px_order, px_starts = _buckets(flat, top)
    px_order = px_order.astype(idx, copy=False)
    # position of each pixel among the pixels of its level (its vertex id at that level)
    pos = np.empty(n, dtype=idx)
    pos[px_order] = np.arange(n, dtype=idx) - np.repeat(px_starts[:-1], np.diff(px_starts)).astype(idx)
    shifts = np.arange(len(offsets), dtype=np.uint8)
    rows, cols = np.nonzero((bits[px_order][:, None] >> shifts) & 1)  # rows: index into px_order
    rows = rows.astype(idx)
    dst = px_order[rows] + offsets.astype(idx)[cols]
    del cols
    e_starts = np.searchsorted(rows, px_starts)

    leaf = np.full(n, _NO_NODE, dtype=idx)
    parent = np.full(n, _NO_NODE, dtype=idx)  # at most one new node per pixel
    death = np.full(n, _NO_NODE, dtype=idx)
    birth = np.empty(n, dtype=idx)
    uf = _UnionFind(n, idx)
    stamp = np.empty(n, dtype=idx)  # scratch for de-duplicating roots
    made = 0
    for v in range(top, min_level - 1, -1):
        p0, p1 = px_starts[top - v], px_starts[top - v + 1]
        if p0 == p1:
            continue
        n_new = int(p1 - p0)
        e0, e1 = e_starts[top - v], e_starts[top - v + 1]
        old = np.empty(0, dtype=idx)
        if e0 == e1:
            n_comp, labels = n_new, np.arange(n_new)
        else:
            ends = dst[e0:e1]
            verts = pos[ends]
            outer = np.flatnonzero(flat[ends] != v)
            if len(outer):
                roots = uf.find_unique(leaf[ends[outer]], stamp)
                stamp[roots] = np.arange(len(roots), dtype=idx)
                rep = stamp[roots]
                firsts = rep == np.arange(len(roots))
                old = roots[firsts]
                verts[outer] = n_new + (np.cumsum(firsts) - 1)[rep]
            n_comp, labels = _components(n_new + len(old), rows[e0:e1] - p0, verts)
        leaf[px_order[p0:p1]] = made + labels[:n_new]
        if len(old):
            merged_into = made + labels[n_new:]
            parent[old] = merged_into
            uf.up[old] = merged_into
            death[old] = v
        birth[made:made + n_comp] = v
        made += n_comp
    return leaf, parent[:made].astype(np.int64), death[:made].astype(np.int64), birth[:made].astype(np.int64)


def component_tree(x: np.ndarray, connectivity: int = 8, *, min_level: int = 1, first: bool = True,
                   border: bool = True) -> ComponentTree:
    """Build the max-tree of integer images.

    Args:
        x: ``(B, H, W)`` non-negative integer array (e.g. uint8 levels).
        connectivity: 8 (diagonal neighbours connect) or 4.
        min_level: pixels below this level are never foreground and are left
            out (the default 1 skips level 0, which no strict threshold at or
            above 0 can select).
        first, border: compute these node attributes (skip to save time; the
            skipped attribute is then all zeros / all False).

    Returns:
        the :class:`ComponentTree` of ``x``.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be (B, H, W), got shape {x.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    b, h, w = x.shape
    top = int(x.max()) if x.size else 0
    x = x.astype(np.uint8 if top < 256 else np.int32, copy=False)
    flat = x.reshape(-1)
    bits, offsets = _upper_neighbours(x, connectivity)
    leaf, parent, death, birth = _sweep(flat, bits, offsets, top, min_level)
    del bits
    made = len(birth)

    pix = np.flatnonzero(leaf >= 0)
    node = leaf[pix]
    hw = h * w
    local = pix % hw
    ys, xs = local // w, local % w
    # per node: own pixels first, then children folded into parents, deepest level first
    lows = [xs, ys] + ([local] if first else [])
    highs = [xs, ys] + ([(xs == 0) | (ys == 0) | (xs == w - 1) | (ys == h - 1)] if border else [])
    low = [np.full(made, np.iinfo(np.int64).max, dtype=np.int64) for _ in lows]
    high = [np.full(made, -1, dtype=np.int64) for _ in highs]
    for acc, val in zip(low, lows):
        np.minimum.at(acc, node, val)
    for acc, val in zip(high, highs):
        np.maximum.at(acc, node, val.astype(np.int64, copy=False))
    image = np.zeros(made, dtype=np.int64)
    image[node] = pix // hw
    groups = _level_groups(birth)
    for ids in groups:
        ids = ids[parent[ids] >= 0]
        up = parent[ids]
        for acc in low:
            np.minimum.at(acc, up, acc[ids])
        for acc in high:
            np.maximum.at(acc, up, acc[ids])
    return ComponentTree(image=image, birth=birth, death=death, parent=parent, x0=low[0], y0=low[1], x1=high[0],
                         y1=high[1], first=low[2] if first else np.zeros(made, dtype=np.int64),
                         border=high[2].astype(bool) if border else np.zeros(made, dtype=bool), leaf=leaf,
                         shape=(b, h, w))


def touch_levels(tree: ComponentTree) -> np.ndarray:
    """For each pixel, the highest level at which its component touches the border.

    Returns ``(B * H * W,)`` int64: the birth level of the first node on the
    pixel's path to the root that touches the image border (0 if none does, or
    if the pixel is in no node). For the tree of an inverted map (background
    components), this is when a pixel becomes connected to the outside.
    """
    reach = np.zeros(len(tree), dtype=np.int64)
    reach[tree.border] = tree.birth[tree.border]
    for ids in reversed(tree._groups_bottom_up()):  # parents before children
        inner = ids[~tree.border[ids] & (tree.parent[ids] >= 0)]
        reach[inner] = reach[tree.parent[inner]]
    out = np.zeros(tree.leaf.shape, dtype=np.int64)
    has = tree.leaf >= 0
    out[has] = reach[tree.leaf[has]]
    return out


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
    idx = np.arange(b * h * w, dtype=np.int64).reshape(b, h, w)
    corners_v = np.stack([x[:, :-1, :-1], x[:, :-1, 1:], x[:, 1:, :-1], x[:, 1:, 1:]]).reshape(4, -1)
    corners_i = np.stack([idx[:, :-1, :-1], idx[:, :-1, 1:], idx[:, 1:, :-1], idx[:, 1:, 1:]]).reshape(4, -1)
    order = np.argsort(corners_v, axis=0, kind="stable")
    cols = np.arange(corners_v.shape[1])
    own = np.zeros(len(tree), dtype=np.int64)
    for rank in (0, 1):  # the 4th and the 3rd pixel to be filled
        pixel = corners_i[order[rank], cols]
        node = tree.leaf[pixel]
        np.add.at(own, node[node >= 0], 1)
    return tree.subtree_sum(own)
