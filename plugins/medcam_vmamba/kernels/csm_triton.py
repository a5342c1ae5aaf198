"""Cross-scan / cross-merge as Triton kernels wrapped in autograd Functions.

Imported only when a Triton path is chosen (CUDA tensors, or the Triton
interpreter on CPU), so triton stays optional. One kernel serves both
directions: a program takes a (block_c, block_h, block_w) tile of the map and,
for each of the 4 routes, the flat position p_k(h, w) of every pixel in that
route (see :mod:`medcam_vmamba.kernels.csm_torch`). Scan copies x[h, w] to
y_k[p_k]; merge sums y_k[p_k] into x[h, w]; they are adjoints, so each is the
other's backward. The sizes B, C, H, W are runtime arguments (one compiled
kernel per layout/variant, none per input size, unlike VMamba's where every
size is a ``tl.constexpr``), and every load and store is masked.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import device_guard

__all__ = ["triton_cross_scan", "triton_cross_merge", "DEFAULT_BLOCKS"]

# (block_c, block_h, block_w) per channel-first / channel-last map layout; powers of two.
DEFAULT_BLOCKS = {True: (1, 32, 32), False: (32, 4, 8)}


@triton.jit
def _route(k: tl.constexpr, h, w, H, W, SCANS: tl.constexpr):
    """Flat position of pixel (h, w) in route k (row-major p, column-major q, reversed, rotated)."""
    L = H * W
    if SCANS == 1:
        pos = h * W + w
    elif SCANS == 2:
        if k < 2:
            pos = h * W + w
        else:
            pos = L - 1 - (h * W + w)
    elif SCANS == 3:
        if k == 0:
            pos = h * W + w
        elif k == 1:
            pos = (W - 1 - w) * H + h
        elif k == 2:
            pos = L - 1 - (h * W + w)
        else:
            pos = w * H + (H - 1 - h)
    else:
        if k == 0:
            pos = h * W + w
        elif k == 1:
            pos = w * H + h
        elif k == 2:
            pos = L - 1 - (h * W + w)
        else:
            pos = L - 1 - (w * H + h)
    return pos


@triton.jit
def _map_offset(k: tl.constexpr, b, c, p, C, L, CF: tl.constexpr, HAS_K: tl.constexpr):
    """Offset of element (b, [k,] c, position p) in a (B, [4,] C, L) or (B, L, [4,] C) tensor."""
    if HAS_K:
        if CF:
            off = b * (4 * C * L) + (k * C + c) * L + p
        else:
            off = b * (4 * C * L) + p * (4 * C) + k * C + c
    else:
        if CF:
            off = b * (C * L) + c * L + p
        else:
            off = b * (C * L) + p * C + c
    return off


@triton.jit
def _csm_kernel(
    x_ptr, y_ptr, C, H, W,
    MERGE: tl.constexpr, X_CF: tl.constexpr, Y_CF: tl.constexpr, ONE_BY_ONE: tl.constexpr,
    SCANS: tl.constexpr, ACC: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    """x: the map side, (B, C, H, W)/(B, H, W, C) or (B, 4, C, ..)/(B, .., 4, C) if ONE_BY_ONE;
    y: the routes, (B, 4, C, L) / (B, L, 4, C). Scan: x -> y; merge: y -> x, summed in ACC."""
    pid_hw = tl.program_id(0)
    n_w = tl.cdiv(W, BLOCK_W)
    hs = (pid_hw // n_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    ws = (pid_hw % n_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    b = tl.program_id(2).to(tl.int64)
    c3 = cs[:, None, None]
    h3 = hs[None, :, None]
    w3 = ws[None, None, :]
    mask = (c3 < C) & (h3 < H) & (w3 < W)
    L = H * W
    p0 = h3 * W + w3
    if MERGE:
        total = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC)
        for k in tl.static_range(4):
            pk = _route(k, h3, w3, H, W, SCANS)
            v = tl.load(y_ptr + _map_offset(k, b, c3, pk, C, L, Y_CF, True), mask=mask, other=0.0)
            if ONE_BY_ONE:
                tl.store(x_ptr + _map_offset(k, b, c3, p0, C, L, X_CF, True), v, mask=mask)
            else:
                total += v.to(ACC)
        if not ONE_BY_ONE:
            tl.store(x_ptr + _map_offset(0, b, c3, p0, C, L, X_CF, False),
                     total.to(x_ptr.dtype.element_ty), mask=mask)
    else:
        if not ONE_BY_ONE:
            v = tl.load(x_ptr + _map_offset(0, b, c3, p0, C, L, X_CF, False), mask=mask, other=0.0)
        for k in tl.static_range(4):
            if ONE_BY_ONE:
                v = tl.load(x_ptr + _map_offset(k, b, c3, p0, C, L, X_CF, True), mask=mask, other=0.0)
            pk = _route(k, h3, w3, H, W, SCANS)
            tl.store(y_ptr + _map_offset(k, b, c3, pk, C, L, Y_CF, True), v, mask=mask)


def _launch(x: Tensor, y: Tensor, b: int, c: int, h: int, w: int, merge: bool, x_cf: bool, y_cf: bool,
            one_by_one: bool, scans: int, blocks: tuple[int, int, int] | None) -> None:
    """One launch over a grid of (H x W tiles, C blocks, B); both tensors contiguous."""
    bc, bh, bw = blocks if blocks is not None else DEFAULT_BLOCKS[x_cf]
    grid = (triton.cdiv(h, bh) * triton.cdiv(w, bw), triton.cdiv(c, bc), b)
    acc = tl.float64 if y.dtype == torch.float64 else tl.float32
    with device_guard(x):
        _csm_kernel[grid](x, y, c, h, w, MERGE=merge, X_CF=x_cf, Y_CF=y_cf, ONE_BY_ONE=one_by_one,
                          SCANS=scans, ACC=acc, BLOCK_C=bc, BLOCK_H=bh, BLOCK_W=bw)


def _map_dims(x: Tensor, cf: bool, one_by_one: bool) -> tuple[int, int, int, int]:
    """(B, C, H, W) of a map tensor in the given layout."""
    if one_by_one:
        return (x.shape[0], x.shape[2], x.shape[3], x.shape[4]) if cf else \
            (x.shape[0], x.shape[4], x.shape[1], x.shape[2])
    return (x.shape[0], x.shape[1], x.shape[2], x.shape[3]) if cf else \
        (x.shape[0], x.shape[3], x.shape[1], x.shape[2])


def _scan(x: Tensor, x_cf: bool, y_cf: bool, one_by_one: bool, scans: int,
          blocks: tuple[int, int, int] | None) -> Tensor:
    b, c, h, w = _map_dims(x, x_cf, one_by_one)
    y = x.new_empty((b, 4, c, h * w) if y_cf else (b, h * w, 4, c))
    _launch(x.contiguous(), y, b, c, h, w, False, x_cf, y_cf, one_by_one, scans, blocks)
    return y


def _merge(y: Tensor, b: int, c: int, h: int, w: int, x_cf: bool, y_cf: bool, one_by_one: bool,
           scans: int, blocks: tuple[int, int, int] | None) -> Tensor:
    if one_by_one:
        x = y.new_empty((b, 4, c, h * w) if x_cf else (b, h * w, 4, c))
    else:
        x = y.new_empty((b, c, h * w) if x_cf else (b, h * w, c))
    _launch(x, y.contiguous(), b, c, h, w, True, x_cf, y_cf, one_by_one, scans, blocks)
    return x


class CrossScanTriton(torch.autograd.Function):
    """x (map layout) -> routes (B, 4, C, L) / (B, L, 4, C); backward = cross-merge."""

    @staticmethod
    def forward(ctx, x: Tensor, in_cf: bool, out_cf: bool, one_by_one: bool, scans: int,  # type: ignore[override]
                blocks: tuple[int, int, int] | None = None) -> Tensor:
        ctx.meta = (x.shape, _map_dims(x, in_cf, one_by_one), in_cf, out_cf, one_by_one, scans, blocks)
        return _scan(x, in_cf, out_cf, one_by_one, scans, blocks)

    @staticmethod
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        shape, (b, c, h, w), in_cf, out_cf, one_by_one, scans, blocks = ctx.meta
        gx = _merge(gy, b, c, h, w, in_cf, out_cf, one_by_one, scans, blocks)
        return gx.view(shape), None, None, None, None, None


class CrossMergeTriton(torch.autograd.Function):
    """routes y (B, 4, C, H, W) / (B, H, W, 4, C) -> (B, C, L) / (B, L, C); backward = cross-scan."""

    @staticmethod
    def forward(ctx, y: Tensor, in_cf: bool, out_cf: bool, one_by_one: bool, scans: int,  # type: ignore[override]
                blocks: tuple[int, int, int] | None = None) -> Tensor:
        b, c, h, w = (y.shape[0], y.shape[2], y.shape[3], y.shape[4]) if out_cf else \
            (y.shape[0], y.shape[4], y.shape[1], y.shape[2])
        ctx.meta = (y.shape, (b, c, h, w), in_cf, out_cf, one_by_one, scans, blocks)
        return _merge(y, b, c, h, w, in_cf, out_cf, one_by_one, scans, blocks)

    @staticmethod
    def backward(ctx, gx: Tensor):  # type: ignore[override]
        shape, (b, c, h, w), in_cf, out_cf, one_by_one, scans, blocks = ctx.meta
        if one_by_one:
            gmap = gx.reshape((b, 4, c, h, w) if in_cf else (b, h, w, 4, c))
        else:
            gmap = gx.reshape((b, c, h, w) if in_cf else (b, h, w, c))
        gy = _scan(gmap, in_cf, out_cf, one_by_one, scans, blocks)
        return gy.view(shape), None, None, None, None, None


def triton_cross_scan(x: Tensor, in_channel_first: bool = True, out_channel_first: bool = True,
                      one_by_one: bool = False, scans: int = 0,
                      blocks: tuple[int, int, int] | None = None) -> Tensor:
    """Triton cross-scan (validated input); ``blocks`` = (block_c, block_h, block_w) overrides the tiles."""
    return CrossScanTriton.apply(x, in_channel_first, out_channel_first, one_by_one, scans, blocks)


def triton_cross_merge(y: Tensor, in_channel_first: bool = True, out_channel_first: bool = True,
                       one_by_one: bool = False, scans: int = 0,
                       blocks: tuple[int, int, int] | None = None) -> Tensor:
    """Triton cross-merge (validated input); ``blocks`` = (block_c, block_h, block_w) overrides the tiles."""
    return CrossMergeTriton.apply(y, in_channel_first, out_channel_first, one_by_one, scans, blocks)
