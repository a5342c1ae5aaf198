"""Selective scan in plain PyTorch: a chunked scan with a hand-written backward, both O(L).

The recurrence (Gu and Dao, "Mamba: Linear-Time Sequence Modeling with Selective
State Spaces", 2023, Alg. 2, zero-order-hold discretisation), per channel d and
state n, with h_{-1} = 0:

    h_l = exp(delta_l * A) * h_{l-1} + delta_l * B_l * u_l,     y_l = sum_n C_l * h_l (+ D * u_l)

is a first-order linear recurrence h_l = a_l h_{l-1} + b_l. It is computed in
chunks of T ~ sqrt(L) steps (a two-level scan, Blelloch 1990): (1) a local scan
inside every chunk, all chunks at once, from a zero state, which also forms
P_t = a_1 ... a_t, the within-chunk cumulative product (= exp(A cumsum(delta)));
(2) a short sequential pass over the L / T chunk-end states,
H(c) = local_end(c) + P_end(c) H(c-1); (3) one correction h += P * H(c-1). Only
products of the a_l appear (each <= 1 when A <= 0, delta >= 0), never the exp of
a positive number, so nothing overflows that the plain recurrence would not.
The Python loop runs ~2 sqrt(L) times instead of L, each step on all chunks.

The backward is the adjoint recurrence, run from the end with the same chunked
scan: g_l = C_l dy_l + a_{l+1} g_{l+1}; with q_l = g_l a_l h_{l-1},
dA = sum_l q delta, d(delta) = sum_n q A + u sum_n g B, du = delta sum_n g B,
dB = sum_d g delta u, dC = sum_d dy h (delta here is the step after bias and
softplus; their derivatives, and D's, are applied around the core). The states
are recomputed (as mamba-ssm's CUDA kernel does), so the saved memory is a few
tensors of the size of u; time and memory are linear in L.

Everything runs in a sequence-first layout (L, B, G, D/G) reached by one 2-D
transposed copy per input and output, on cache-sized blocks of channels with
reused work buffers (on CPU, fresh large allocations cost page faults that
exceed the arithmetic).
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["torch_selective_scan", "default_chunk", "softplus_"]

_BUDGET = 1 << 22  # elements per block work tensor (16 MB in float32); tuned on 2 CPU cores


def default_chunk(length: int) -> int:
    """Chunk length T = ceil(sqrt(L)): balances the T local steps against the L / T chunk steps
    (and divides L exactly for the square maps of VMamba)."""
    return max(1, math.isqrt(max(length - 1, 0)) + 1)


_SERIAL_BELOW = 1 << 18  # elements per step op below which the step loops run on one thread


@contextlib.contextmanager
def _serial(step_numel: int) -> Iterator[None]:
    """Run the ~2 sqrt(L) small step ops on one thread: splitting them over threads gains little,
    and on a busy machine every parallel region waits for a descheduled worker."""
    threads = torch.get_num_threads()
    if threads == 1 or step_numel >= _SERIAL_BELOW:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _chunk_scan_(h: Tensor, a: Tensor, prod: Tensor, chunk: int) -> None:
    """In place: h_l = a_l h_{l-1} + b_l along dim 0 of h (Lp, M), which holds b on entry.

    ``prod`` (Lp, M) is a work buffer (overwritten); Lp is a multiple of ``chunk``.
    """
    length, m = h.shape
    n_chunks = length // chunk
    hv, av, pv = h.view(n_chunks, chunk, m), a.view(n_chunks, chunk, m), prod.view(n_chunks, chunk, m)
    pv[:, 0] = av[:, 0]
    with _serial(n_chunks * m):
        for t in range(1, chunk):  # (1) local scans of all chunks at once
            hv[:, t].addcmul_(av[:, t], hv[:, t - 1])
            torch.mul(pv[:, t - 1], av[:, t], out=pv[:, t])
        if n_chunks == 1:
            return
        carries = torch.zeros_like(hv[:, 0])  # true state entering each chunk, (n_chunks, M)
        for c in range(1, n_chunks):  # (2) sequential pass over chunk ends
            torch.addcmul(hv[c - 1, -1], pv[c - 1, -1], carries[c - 1], out=carries[c])
    hv[1:].addcmul_(pv[1:], carries[1:, None])  # (3) correction


def _chunk_scan_reverse_(g: Tensor, a: Tensor, prod: Tensor, chunk: int) -> None:
    """In place: g_l = s_l + a_{l+1} g_{l+1} along dim 0 of g (Lp, M), which holds s on entry.

    Note the shifted coefficient (the adjoint of :func:`_chunk_scan_` with the same ``a``).
    """
    length, m = g.shape
    n_chunks = length // chunk
    gv, av, pv = g.view(n_chunks, chunk, m), a.view(n_chunks, chunk, m), prod.view(n_chunks, chunk, m)
    pv[:-1, -1] = av[1:, 0]  # a at the first step of the next chunk
    pv[-1, -1] = 0
    with _serial(n_chunks * m):
        for t in range(chunk - 2, -1, -1):  # (1) local scans; pv[c, t] = a[c, t+1] ... a[c+1, 0]
            gv[:, t].addcmul_(av[:, t + 1], gv[:, t + 1])
            torch.mul(av[:, t + 1], pv[:, t + 1], out=pv[:, t])
        if n_chunks == 1:
            return
        carries = torch.zeros_like(gv[:, 0])  # true g at the first step of the next chunk
        for c in range(n_chunks - 2, -1, -1):  # (2)
            torch.addcmul(gv[c + 1, 0], pv[c + 1, 0], carries[c + 1], out=carries[c])
    gv[:-1].addcmul_(pv[:-1], carries[:-1, None])  # (3)


class _Buffers:
    """Reusable work tensors: fresh large allocations (page faults) cost more than the arithmetic."""

    def __init__(self, like: Tensor, numel: int, count: int) -> None:
        self._flat = [like.new_empty(numel) for _ in range(count)]

    def get(self, i: int, shape: tuple[int, ...] | torch.Size) -> Tensor:
        return self._flat[i][: math.prod(shape)].view(shape)


def _states(dt: Tensor, du: Tensor, A: Tensor, b: Tensor, chunk: int, bufs: _Buffers) -> tuple[Tensor, Tensor]:
    """States h and decays a (both (Lp, Bz, Gb, Dc, N), in buffers 0 and 1; buffer 2 is scratch).

    dt, du = dt * u: (Lp, Bz, Gb, Dc); A: (Gb, Dc, N); b = B of the block's groups: (Lp, Bz, Gb, N).
    """
    shape = (*dt.shape, A.shape[-1])
    lp = shape[0]
    h = torch.mul(du[..., None], b[:, :, :, None, :], out=bufs.get(0, shape))
    a = torch.mul(dt[..., None], A, out=bufs.get(1, shape)).exp_()
    _chunk_scan_(h.view(lp, -1), a.view(lp, -1), bufs.get(2, (lp, h[0].numel())), chunk)
    return h, a


def _sum_n(x: Tensor, w: Tensor) -> Tensor:
    """sum_n x[..., d, n] w[..., n]: x (..., Dc, N), w (..., N) -> (..., Dc)."""
    if x.shape[-1] == 1:
        return x[..., 0] * w
    return torch.matmul(x, w[..., None])[..., 0]


def _sum_d(v: Tensor, x: Tensor) -> Tensor:
    """sum_d v[..., d] x[..., d, n]: v (..., Dc), x (..., Dc, N) -> (..., N)."""
    if x.shape[-1] == 1:
        return (v * x[..., 0]).sum(-1, keepdim=True)
    return torch.matmul(v[..., None, :], x)[..., 0, :]


def _blocks(groups: int, dg: int, per_channel: int) -> list[tuple[slice, slice]]:
    """(group slice, channel slice) blocks whose (Lp, B, Gb, Dc, N) tensors hold about ``_BUDGET`` elements."""
    channels = max(1, _BUDGET // max(per_channel, 1))
    if channels >= dg:  # whole groups per block
        gb = min(groups, channels // dg)
        return [(slice(g0, min(g0 + gb, groups)), slice(0, dg)) for g0 in range(0, groups, gb)]
    return [(slice(g, g + 1), slice(d0, min(d0 + channels, dg)))
            for g in range(groups) for d0 in range(0, dg, channels)]


def _seq_first(x: Tensor, lp: int) -> Tensor:
    """(B, ..., L) -> zero-padded (Lp, B, ...), contiguous: one 2-D transposed copy."""
    rows = x[..., 0].numel()
    out = x.new_empty((lp, *x.shape[:-1]))
    out.view(lp, rows)[: x.shape[-1]].copy_(x.reshape(rows, x.shape[-1]).t())
    if lp > x.shape[-1]:
        out[x.shape[-1]:] = 0
    return out


def _seq_last(x: Tensor, length: int) -> Tensor:
    """(Lp, B, ...) -> (B, ..., L), the first ``length`` steps: one 2-D transposed copy."""
    rows = x[0].numel()
    out = x.new_empty((*x.shape[1:], length))
    out.view(rows, length).copy_(x.reshape(x.shape[0], rows)[:length].t())
    return out


def softplus_(z: Tensor) -> Tensor:
    """softplus(z) = log(1 + e^z) (identity above 20, as ``F.softplus``), within a few ulps of it.

    log1p is not vectorised on every CPU build, so log(1 + t) is computed with
    log and corrected for the rounding of u = 1 + t (Goldberg 1991, "What every
    computer scientist should know about floating-point arithmetic", Thm. 4):
    log1p(t) ~ log(u) - ((u - 1) - t) / u. Returns a new tensor.
    """
    t = torch.exp(z)
    u = t + 1
    err = (u - 1).sub_(t).div_(u)
    return torch.where(z > 20, z, u.log_().sub_(err))


class _ChunkedSelectiveScan(torch.autograd.Function):
    """y = SSM(u, softplus?(delta + bias), A, B, C) + D u, all in the sequence-first layout."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,  # type: ignore[override]
                D: Tensor | None, bias: Tensor | None, softplus: bool, chunk: int):
        # u, delta: (B, KD, L); A: (KD, N); Bm, Cm: (B, G, N, L); D, bias: (KD,); all one float dtype.
        bsz, kd, length = u.shape
        groups, n = Bm.shape[1], A.shape[1]
        dg = kd // groups
        lp = length + (-length) % chunk  # padding steps: dt = 0 (a = 1) and u = B = 0 (b = 0)
        u4 = _seq_first(u, lp).view(lp, bsz, groups, dg)
        z4 = _seq_first(delta, lp).view(lp, bsz, groups, dg)
        if bias is not None:
            z4.view(lp, bsz, kd)[:length] += bias
        dt4 = softplus_(z4) if softplus else z4
        if softplus and lp > length:
            dt4[length:] = 0
        b4, c4 = _seq_first(Bm, lp), _seq_first(Cm, lp)  # (Lp, B, G, N)
        a3 = A.reshape(groups, dg, n)
        du4 = dt4 * u4
        y4 = torch.empty_like(u4)
        last = u4.new_empty(bsz, groups, dg, n)
        blocks = _blocks(groups, dg, lp * bsz * n)
        bufs = _Buffers(u4, max(lp * bsz * (g.stop - g.start) * (d.stop - d.start) * n for g, d in blocks), 3)
        for gs, ds in blocks:
            h, _ = _states(dt4[:, :, gs, ds], du4[:, :, gs, ds], a3[gs, ds], b4[:, :, gs], chunk, bufs)
            y4[:, :, gs, ds] = _sum_n(h, c4[:, :, gs])
            last[:, gs, ds] = h[length - 1]
        if D is not None:
            y4.view(lp, bsz, kd).addcmul_(u4.view(lp, bsz, kd), D)
        ctx.save_for_backward(u4, z4 if softplus else None, dt4, du4, a3, b4, c4, D)
        ctx.meta = (length, chunk, bias is not None)
        ctx.mark_non_differentiable(last)
        return _seq_last(y4, length).view(bsz, kd, length), last.reshape(bsz, kd, n)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy: Tensor, _glast: Tensor):  # type: ignore[override]
        u4, z4, dt4, du4, a3, b4, c4, D = ctx.saved_tensors
        length, chunk, has_bias = ctx.meta
        lp, bsz, groups, dg = u4.shape
        n = a3.shape[-1]
        gy4 = _seq_first(gy.reshape(bsz, groups, dg, length), lp)
        g_u, g_dt = torch.empty_like(u4), torch.empty_like(u4)
        g_a = torch.empty_like(a3)
        g_b, g_c = torch.empty_like(b4), torch.empty_like(c4)
        blocks = _blocks(groups, dg, lp * bsz * n)
        bufs = _Buffers(u4, max(lp * bsz * (g.stop - g.start) * (d.stop - d.start) * n for g, d in blocks), 4)
        for gs, ds in blocks:
            dt, a_blk, gy_blk, du = dt4[:, :, gs, ds], a3[gs, ds], gy4[:, :, gs, ds], du4[:, :, gs, ds]
            h, a = _states(dt, du, a_blk, b4[:, :, gs], chunk, bufs)  # recomputed
            g = torch.mul(gy_blk[..., None], c4[:, :, gs, None, :], out=bufs.get(3, h.shape))
            _chunk_scan_reverse_(g.view(lp, -1), a.view(lp, -1), bufs.get(2, (lp, h[0].numel())), chunk)
            gc, gb = _sum_d(gy_blk, h), _sum_d(du, g)  # sum_d dy h, sum_d g dt u: (Lp, B, Gb, N)
            r = _sum_n(g, b4[:, :, gs])  # sum_n g B: (Lp, B, Gb, Dc)
            if ds.start == 0:
                g_c[:, :, gs], g_b[:, :, gs] = gc, gb
            else:
                g_c[:, :, gs] += gc
                g_b[:, :, gs] += gb
            torch.mul(dt, r, out=g_u[:, :, gs, ds])
            gdt = g_dt[:, :, gs, ds]
            torch.mul(u4[:, :, gs, ds], r, out=gdt)
            q = a[1:].mul_(h[:-1]).mul_(g[1:])  # q_l = g_l a_l h_{l-1}, l >= 1 (overwrites a)
            gdt[1:] += torch.mul(q, a_blk, out=bufs.get(2, q.shape)).sum(-1)
            g_a[gs, ds] = q.mul_(dt[1:, ..., None]).sum((0, 1))
        kd = groups * dg
        g_d = None
        if D is not None:
            g_d = (gy4 * u4)[:length].reshape(-1, kd).sum(0)
            g_u.view(lp, bsz, kd).addcmul_(gy4.view(lp, bsz, kd), D)
        if z4 is not None:  # d softplus(z) / dz = sigmoid(z), and 1 above the threshold 20
            g_dt.mul_(torch.sigmoid(z4).masked_fill_(z4 > 20, 1))
        g_bias = g_dt[:length].reshape(-1, kd).sum(0) if has_bias else None
        return (_seq_last(g_u, length).view(bsz, kd, length), _seq_last(g_dt, length).view(bsz, kd, length),
                g_a.reshape(-1, n), _seq_last(g_b, length), _seq_last(g_c, length), g_d, g_bias, None, None)


def torch_selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Chunked selective scan on any device (validated inputs; see ``selective_scan``).

    u, delta: (B, KD, L); A: (KD, N); B, C: (B, G, N, L); D, delta_bias: (KD,).
    Computes in float64 for float64 input, else float32; returns y (B, KD, L) in
    float32 for half inputs, else in the input dtype; with ``return_last_state``
    also h_{L-1} (B, KD, N) in the compute dtype (no gradient).
    """
    cdt = torch.float64 if u.dtype == torch.float64 else torch.float32
    out_dtype = torch.float32 if u.dtype in (torch.float16, torch.bfloat16) else u.dtype
    chunk = default_chunk(u.shape[-1]) if chunk_size is None else int(chunk_size)
    y, last = _ChunkedSelectiveScan.apply(
        u.to(cdt), delta.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt), None if D is None else D.to(cdt),
        None if delta_bias is None else delta_bias.to(cdt), bool(delta_softplus), chunk)
    y = y.to(out_dtype)
    return (y, last) if return_last_state else y
