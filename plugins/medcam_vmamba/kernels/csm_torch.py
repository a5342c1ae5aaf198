"""Cross-scan and cross-merge in plain PyTorch (the reference, and the CPU path).

VMamba (Liu et al., "VMamba: Visual State Space Model", NeurIPS 2024, Sec. 3.2,
the "2D-Selective-Scan") unfolds a feature map ``x`` of shape (B, C, H, W) into
K = 4 one-dimensional sequences of length L = H * W (the "routes"), runs a
selective scan along each, and sums the four results back into the map
("cross-merge"). With the row-major flat index ``p = h * W + w`` and the
column-major one ``q = w * H + h``, ``scans=0`` ("cross2d") is

    y0[p] = x[h, w]   y1[q] = x[h, w]   y2[L-1-p] = x[h, w]   y3[L-1-q] = x[h, w]

``scans=1`` repeats route 0 four times, ``scans=2`` is (0, 0, 2, 2) (forward
and reversed row-major), ``scans=3`` flattens ``rot90(x, k)`` over (H, W) for
k = 0..3. Cross-merge is the adjoint (transpose) of cross-scan:
``<scan(x), y> == <x, merge(y)>``, so each is the other's backward; autograd
derives that here from the view/flip/transpose ops.

Every function takes validated inputs (see :mod:`medcam_vmamba.kernels.csm`).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["torch_cross_scan", "torch_cross_merge"]


def _route(x: Tensor, k: int, scans: int) -> Tensor:
    """Route ``k`` of one map ``x`` (N, C, H, W) as a sequence (N, C, L)."""
    if scans == 3:
        return torch.rot90(x, k, dims=(-2, -1)).flatten(-2)
    if scans == 1 or (scans == 2 and k < 2) or (scans == 0 and k == 0):
        return x.flatten(-2)
    if scans == 2 or k == 2:  # reversed row-major
        return x.flatten(-2).flip(-1)
    cols = x.transpose(-2, -1).flatten(-2)  # column-major
    return cols if k == 1 else cols.flip(-1)


def _unroute(y: Tensor, k: int, scans: int, h: int, w: int) -> Tensor:
    """Adjoint of :func:`_route`: a sequence (N, C, L) back to row-major (N, C, L)."""
    if scans == 3:
        rh, rw = (h, w) if k % 2 == 0 else (w, h)
        return torch.rot90(y.unflatten(-1, (rh, rw)), -k, dims=(-2, -1)).flatten(-2)
    if scans == 1 or (scans == 2 and k < 2) or (scans == 0 and k == 0):
        return y
    if scans == 2 or k == 2:
        return y.flip(-1)
    cols = y if k == 1 else y.flip(-1)
    return cols.unflatten(-1, (w, h)).transpose(-2, -1).flatten(-2)


def torch_cross_scan(
    x: Tensor,
    in_channel_first: bool = True,
    out_channel_first: bool = True,
    one_by_one: bool = False,
    scans: int = 0,
) -> Tensor:
    """Unfold a map into 4 routes.

    x: (B, C, H, W) if ``in_channel_first`` else (B, H, W, C); with ``one_by_one``
    (B, 4, C, H, W) or (B, H, W, 4, C) and map k takes route k.
    Returns (B, 4, C, L) if ``out_channel_first`` else (B, L, 4, C), L = H * W.
    """
    if one_by_one:
        maps = x if in_channel_first else x.permute(0, 3, 4, 1, 2)  # (B, 4, C, H, W)
        ys = [_route(maps[:, k], k, scans) for k in range(4)]
    else:
        m = x if in_channel_first else x.permute(0, 3, 1, 2)  # (B, C, H, W)
        ys = [_route(m, k, scans) for k in range(4)]
    y = torch.stack(ys, dim=1)  # (B, 4, C, L)
    return y if out_channel_first else y.permute(0, 3, 1, 2).contiguous()


def torch_cross_merge(
    y: Tensor,
    in_channel_first: bool = True,
    out_channel_first: bool = True,
    one_by_one: bool = False,
    scans: int = 0,
) -> Tensor:
    """Fold 4 routes back onto the row-major grid and sum them (the adjoint of scan).

    y: (B, 4, C, H, W) if ``out_channel_first`` else (B, H, W, 4, C) (H, W only
    give the grid; the data is read as 4 flat sequences of length L = H * W).
    Returns (B, C, L) if ``in_channel_first`` else (B, L, C); with ``one_by_one``
    the 4 maps are not summed: (B, 4, C, L) or (B, L, 4, C).
    """
    if out_channel_first:
        b, _, c, h, w = y.shape
        seqs = y.reshape(b, 4, c, h * w)
    else:
        b, h, w, _, c = y.shape
        seqs = y.reshape(b, h * w, 4, c).permute(0, 2, 3, 1)  # (B, 4, C, L)
    outs = [_unroute(seqs[:, k], k, scans, h, w) for k in range(4)]
    if one_by_one:
        out = torch.stack(outs, dim=1)  # (B, 4, C, L)
        return out if in_channel_first else out.permute(0, 3, 1, 2).contiguous()
    out = outs[0] + outs[1] + outs[2] + outs[3]  # (B, C, L)
    return out if in_channel_first else out.transpose(1, 2).contiguous()
