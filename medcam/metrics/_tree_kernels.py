"""Compiled kernels of the component tree (numba): one union-find pass per image.

The max-tree of an integer image is built with the union-find algorithm of
Berger, Géraud, Levillain, Widynski, Baillard & Bertin, "Effective component
tree computation with application to pattern recognition in astronomical
imaging", ICIP 2007 (pixels in decreasing value order, each joined to its
already-processed neighbours; then a canonicalization pass so that every
pixel points to the canonical pixel of its level component). Node attributes
are folded up the tree in the same compiled code. Najman & Couprie (IEEE TIP
2006) show that this sweep visits each pixel and edge a bounded number of
times, up to the inverse-Ackermann factor of union-find.

Shapes: images are ``(B, H, W)`` int32; per-pixel outputs are flat
``(B * H * W,)``; per-node outputs have one entry per node, nodes of each
image numbered by decreasing level (so a parent's index is larger than its
children's).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["build_tree", "reach_levels", "fold_sum", "window_events"]


@njit(cache=True, nogil=True)
def _find(zpar: np.ndarray, p: int) -> int:
    """Root of ``p`` in the union-find forest ``zpar``, compressing the path."""
    r = p
    while zpar[r] != r:
        r = zpar[r]
    while zpar[p] != r:
        nxt = zpar[p]
        zpar[p] = r
        p = nxt
    return r


@njit(cache=True, nogil=True)
def build_tree(x: np.ndarray, connectivity: int, min_level: int):  # noqa: ANN201 - a tuple of arrays
    """The max-tree of every image of ``x`` ``(B, H, W)`` int32 with values >= 0.

    Pixels below ``min_level`` belong to no node. Returns
    ``(image, birth, death, parent, x0, y0, x1, y1, first, border, leaf)``:
    per node ``(K,)`` int64 arrays (``border`` as int64 0/1), node ``k`` being
    a ``connectivity``-connected component of ``{x >= v}`` for
    ``death[k] < v <= birth[k]`` with inclusive extents ``x0..x1``,
    ``y0..y1``, first raster index ``first`` and whether it touches the image
    border; ``leaf`` ``(B * H * W,)`` int64 is each pixel's node (-1 below
    ``min_level``).

    Each image is copied into a frame one pixel wider on every side whose
    pixels are never present, so neighbours need no bounds checks. The
    union-find uses union by rank and path compression; ``rep`` maps a
    union-find root to the pixel that currently stands for its component in
    the tree (the last one added).
    """
    b, h, w = x.shape
    n = h * w
    wp = w + 2
    n_pad = (h + 2) * wp
    top = 0
    for value in x.ravel():
        top = max(top, value)
    cap = b * n
    image = np.empty(cap, dtype=np.int64)
    birth = np.empty(cap, dtype=np.int64)
    death = np.empty(cap, dtype=np.int64)
    parent = np.empty(cap, dtype=np.int64)
    x0 = np.empty(cap, dtype=np.int64)
    y0 = np.empty(cap, dtype=np.int64)
    x1 = np.empty(cap, dtype=np.int64)
    y1 = np.empty(cap, dtype=np.int64)
    first = np.empty(cap, dtype=np.int64)
    border = np.empty(cap, dtype=np.int64)
    leaf = np.full(cap, -1, dtype=np.int64)
    pad = np.full(n_pad, -1, dtype=np.int32)
    order = np.empty(n_pad, dtype=np.int32)
    par = np.empty(n_pad, dtype=np.int32)
    zpar = np.empty(n_pad, dtype=np.int32)
    rep = np.empty(n_pad, dtype=np.int32)
    rank = np.empty(n_pad, dtype=np.int8)
    node = np.empty(n_pad, dtype=np.int32)
    counts = np.empty(top + 2, dtype=np.int64)
    if connectivity == 8:
        offsets = np.array([-1, -wp - 1, -wp, -wp + 1, 1, wp + 1, wp, wp - 1], dtype=np.int32)
    else:
        offsets = np.array([-1, -wp, 1, wp], dtype=np.int32)
    made = 0
    for i in range(b):
        counts[:] = 0
        for yy in range(h):
            for xx in range(w):
                value = x[i, yy, xx]
                if value >= min_level:
                    pad[(yy + 1) * wp + xx + 1] = value
                    counts[top - value + 1] += 1
                else:
                    pad[(yy + 1) * wp + xx + 1] = -1
        # counting sort of the present pixels by decreasing value, stable in raster order
        for k in range(1, top + 2):
            counts[k] += counts[k - 1]
        live = counts[top + 1]
        for yy in range(h):
            p = (yy + 1) * wp + 1
            for xx in range(w):
                if pad[p] >= 0:
                    key = top - pad[p]
                    order[counts[key]] = p
                    counts[key] += 1
                p += 1
        zpar[:] = -1
        for k in range(live):  # union-find sweep, from the highest pixel down
            p = order[k]
            par[p] = p
            zpar[p] = p
            rep[p] = p
            rank[p] = 0
            zp = p
            for o in offsets:
                q = p + o
                zn = zpar[q]
                if zn < 0:
                    continue
                if zpar[zn] != zn:
                    zn = _find(zpar, q)
                if zn != zp:
                    par[rep[zn]] = p
                    if rank[zp] < rank[zn]:
                        zp, zn = zn, zp
                    zpar[zn] = zp
                    rep[zp] = p
                    if rank[zp] == rank[zn]:
                        rank[zp] += 1
        # lowest pixels (parents) first: canonicalize, and number the nodes from the lowest level up
        # (a component's canonical pixel, added last, comes first here)
        start = made
        count = 0
        for k in range(live - 1, -1, -1):
            p = order[k]
            q = par[p]
            if pad[par[q]] == pad[q]:
                par[p] = par[q]
            if par[p] == p or pad[par[p]] != pad[p]:
                node[p] = count
                count += 1
            else:
                node[p] = node[par[p]]
        last = start + count - 1  # node ids run the other way: deeper nodes first
        for j in range(start, start + count):
            x0[j] = w
            y0[j] = h
            x1[j] = -1
            y1[j] = -1
            first[j] = n
            border[j] = 0
            image[j] = i
        for yy in range(h):
            p = (yy + 1) * wp + 1
            edge_row = yy == 0 or yy == h - 1
            for xx in range(w):
                if pad[p] >= 0:
                    j = last - node[p]
                    raster = yy * w + xx
                    leaf[i * n + raster] = j
                    x0[j] = min(x0[j], xx)
                    x1[j] = max(x1[j], xx)
                    y0[j] = min(y0[j], yy)
                    y1[j] = max(y1[j], yy)
                    first[j] = min(first[j], raster)
                    if edge_row or xx == 0 or xx == w - 1:
                        border[j] = 1
                    q = par[p]
                    if q == p:  # the canonical pixel carries the node's links
                        birth[j] = pad[p]
                        parent[j] = -1
                        death[j] = -1
                    elif pad[q] != pad[p]:
                        birth[j] = pad[p]
                        parent[j] = last - node[q]
                        death[j] = pad[q]
                p += 1
        for j in range(start, start + count):  # children before parents: fold extents up
            u = parent[j]
            if u >= 0:
                x0[u] = min(x0[u], x0[j])
                x1[u] = max(x1[u], x1[j])
                y0[u] = min(y0[u], y0[j])
                y1[u] = max(y1[u], y1[j])
                first[u] = min(first[u], first[j])
                border[u] = max(border[u], border[j])
        made += count
    return (image[:made], birth[:made], death[:made], parent[:made], x0[:made], y0[:made], x1[:made], y1[:made],
            first[:made], border[:made], leaf)


@njit(cache=True, nogil=True)
def reach_levels(birth: np.ndarray, parent: np.ndarray, border: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    """Per pixel (``leaf`` ``(P,)``), the birth level of the first node on its path to the root that
    touches the border; 0 when none does or the pixel is in no node. ``(P,)`` int64."""
    k = birth.size
    reach = np.zeros(k, dtype=np.int64)
    for j in range(k - 1, -1, -1):  # parents (larger ids) before children
        if border[j]:
            reach[j] = birth[j]
        elif parent[j] >= 0:
            reach[j] = reach[parent[j]]
    out = np.zeros(leaf.size, dtype=np.int64)
    for p in range(leaf.size):
        if leaf[p] >= 0:
            out[p] = reach[leaf[p]]
    return out


@njit(cache=True, nogil=True)
def fold_sum(own: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Sum a per-node quantity over each node's subtree (children have smaller ids than parents)."""
    total = own.astype(np.int64)
    for j in range(total.size):
        if parent[j] >= 0:
            total[parent[j]] += total[j]
    return total


@njit(cache=True, nogil=True)
def window_events(x: np.ndarray, leaf: np.ndarray, n_nodes: int) -> np.ndarray:
    """Per node, the 2x2 windows whose 3rd or 4th pixel it adds (each counts once), ``(K,)`` int64.

    For every window of ``x`` ``(B, H, W)``, the node (``leaf``) of its
    smallest corner (the 4th pixel to be added) and of its second smallest
    (the 3rd) each get one event; ties go to the earlier corner in the order
    top-left, top-right, bottom-left, bottom-right, as a stable sort.
    """
    b, h, w = x.shape
    own = np.zeros(n_nodes, dtype=np.int64)
    vals = np.empty(4, dtype=np.int64)
    idx = np.empty(4, dtype=np.int64)
    for i in range(b):
        for yy in range(h - 1):
            for xx in range(w - 1):
                base = i * h * w + yy * w + xx
                idx[0], idx[1], idx[2], idx[3] = base, base + 1, base + w, base + w + 1
                vals[0], vals[1] = x[i, yy, xx], x[i, yy, xx + 1]
                vals[2], vals[3] = x[i, yy + 1, xx], x[i, yy + 1, xx + 1]
                # positions of the smallest and second smallest, ties to the earlier corner (stable sort)
                m0 = 0
                for c in range(1, 4):
                    if vals[c] < vals[m0]:
                        m0 = c
                m1 = -1
                for c in range(4):
                    if c != m0 and (m1 < 0 or vals[c] < vals[m1]):
                        m1 = c
                for c in (m0, m1):
                    j = leaf[idx[c]]
                    if j >= 0:
                        own[j] += 1
    return own
