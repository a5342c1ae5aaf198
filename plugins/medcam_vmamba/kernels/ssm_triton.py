"""Selective scan as Triton kernels (forward and backward), for CUDA without mamba-ssm.

Imported only when the Triton path is chosen, so triton stays optional. The
recurrence is that of :mod:`medcam_vmamba.kernels.ssm_torch` (Gu and Dao, 2023):
h_l = exp(dt_l A) h_{l-1} + dt_l B_l u_l, y_l = C_l . h_l. D, delta_bias and the
softplus are applied outside the kernels by PyTorch autograd.

Forward: a program owns (batch b, group g, a block of channels of g) x all N
states, walks l = 0..L-1 keeping h in registers, writes y and, every ``chunk``
steps, a checkpoint of h. Backward: chunks are visited from the last; each is
re-run forward from its checkpoint into a small per-program scratch buffer, then
walked backwards with the adjoint g_l = C_l dy_l + a_{l+1} g_{l+1}, giving du,
d(delta), dA (summed over batch in PyTorch), and per-program partial sums for the
shared B and C (summed over channel blocks in PyTorch, no atomics). Memory is
O(B KD N L / chunk); sizes are runtime arguments, every load and store is masked.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from .backend import device_guard

__all__ = ["triton_selective_scan", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 64


@triton.jit
def _ssm_fwd_kernel(
    u_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, y_ptr, ckpt_ptr,
    KD, L, G, N, DG, n_chunks, chunk,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """u, dt, y: (B, KD, L); a: (KD, N); b, c: (B, G, N, L); ckpt: (B, KD, n_chunks + 1, N),
    ckpt[:, :, i] = state before step i * chunk (the last one = h_{L-1})."""
    pid_d = tl.program_id(0)
    g = tl.program_id(1)
    bi = tl.program_id(2).to(tl.int64)
    dl = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = dl < DG
    d = g * DG + dl
    ns = tl.arange(0, BLOCK_N)
    nmask = ns < N
    mask2 = dmask[:, None] & nmask[None, :]
    A = tl.load(a_ptr + d[:, None] * N + ns[None, :], mask=mask2, other=0.0).to(ACC)
    seq = bi * KD * L + d * L  # (BLOCK_D,) row starts in u, dt, y
    bc = bi * G * N * L + g * N * L + ns * L  # (BLOCK_N,) row starts in b, c
    ck = (bi * KD + d[:, None]) * (n_chunks + 1) * N + ns[None, :]
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)
    for ci in range(0, n_chunks):
        tl.store(ckpt_ptr + ck + ci * N, h, mask=mask2)
        l0 = ci * chunk
        l1 = tl.minimum(l0 + chunk, L)
        for l in range(l0, l1):
            u = tl.load(u_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            dt = tl.load(dt_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            bl = tl.load(b_ptr + bc + l, mask=nmask, other=0.0).to(ACC)
            cl = tl.load(c_ptr + bc + l, mask=nmask, other=0.0).to(ACC)
            h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * bl[None, :]
            y = tl.sum(h * cl[None, :], axis=1)
            tl.store(y_ptr + seq + l, y.to(y_ptr.dtype.element_ty), mask=dmask)
    tl.store(ckpt_ptr + ck + n_chunks * N, h, mask=mask2)


@triton.jit
def _ssm_bwd_kernel(
    u_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, gy_ptr, ckpt_ptr, scratch_ptr,
    gu_ptr, gdt_ptr, ga_ptr, gb_ptr, gc_ptr,
    KD, L, G, N, DG, n_chunks, chunk, n_dblocks,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """gu, gdt: (B, KD, L); ga: (B, KD, N) (per batch item); gb, gc: (B, G, n_dblocks, N, L)
    (per channel block); scratch: (B * G * n_dblocks, chunk + 1, BLOCK_D, BLOCK_N)."""
    pid_d = tl.program_id(0)
    g = tl.program_id(1)
    bi = tl.program_id(2).to(tl.int64)
    dl = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = dl < DG
    d = g * DG + dl
    ns = tl.arange(0, BLOCK_N)
    nmask = ns < N
    mask2 = dmask[:, None] & nmask[None, :]
    A = tl.load(a_ptr + d[:, None] * N + ns[None, :], mask=mask2, other=0.0).to(ACC)
    seq = bi * KD * L + d * L
    bc = bi * G * N * L + g * N * L + ns * L
    part = ((bi * G + g) * n_dblocks + pid_d) * N * L + ns * L  # (BLOCK_N,) rows of gb, gc partials
    ck = (bi * KD + d[:, None]) * (n_chunks + 1) * N + ns[None, :]
    tile = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + ns[None, :]
    scr = ((bi * G + g) * n_dblocks + pid_d) * (chunk + 1) * BLOCK_D * BLOCK_N + tile
    gh = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)  # a_{l+1} g_{l+1}, carried backwards
    ga = tl.zeros((BLOCK_D, BLOCK_N), dtype=ACC)
    for cj in range(0, n_chunks):
        ci = n_chunks - 1 - cj
        l0 = ci * chunk
        l1 = tl.minimum(l0 + chunk, L)
        h = tl.load(ckpt_ptr + ck + ci * N, mask=mask2, other=0.0)
        tl.store(scratch_ptr + scr, h, mask=mask2)
        for l in range(l0, l1):  # recompute the chunk's states into scratch[1:]
            u = tl.load(u_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            dt = tl.load(dt_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            bl = tl.load(b_ptr + bc + l, mask=nmask, other=0.0).to(ACC)
            h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * bl[None, :]
            tl.store(scratch_ptr + scr + (l - l0 + 1) * BLOCK_D * BLOCK_N, h, mask=mask2)
        tl.debug_barrier()
        for j in range(0, l1 - l0):
            l = l1 - 1 - j
            t = l - l0
            h_l = tl.load(scratch_ptr + scr + (t + 1) * BLOCK_D * BLOCK_N, mask=mask2, other=0.0)
            h_prev = tl.load(scratch_ptr + scr + t * BLOCK_D * BLOCK_N, mask=mask2, other=0.0)
            u = tl.load(u_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            dt = tl.load(dt_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            gy = tl.load(gy_ptr + seq + l, mask=dmask, other=0.0).to(ACC)
            bl = tl.load(b_ptr + bc + l, mask=nmask, other=0.0).to(ACC)
            cl = tl.load(c_ptr + bc + l, mask=nmask, other=0.0).to(ACC)
            a = tl.exp(dt[:, None] * A)
            gh = gh + gy[:, None] * cl[None, :]  # g_l
            r = tl.sum(gh * bl[None, :], axis=1)  # sum_n g B
            q = gh * a * h_prev
            tl.store(gu_ptr + seq + l, dt * r, mask=dmask)
            tl.store(gdt_ptr + seq + l, tl.sum(q * A, axis=1) + u * r, mask=dmask)
            tl.store(gc_ptr + part + l, tl.sum(gy[:, None] * h_l, axis=0), mask=nmask)
            tl.store(gb_ptr + part + l, tl.sum(gh * (dt * u)[:, None], axis=0), mask=nmask)
            ga += q * dt[:, None]
            gh = gh * a
        tl.debug_barrier()
    tl.store(ga_ptr + (bi * KD + d[:, None]) * N + ns[None, :], ga, mask=mask2)


def _blocks(dg: int, n: int, block_d: int | None) -> tuple[int, int]:
    block_n = triton.next_power_of_2(n)
    if block_d is None:
        block_d = max(1, min(triton.next_power_of_2(dg), max(1, 2048 // block_n), 64))
    return block_d, block_n


class _TritonSelectiveScan(torch.autograd.Function):
    """y = SSM(u, dt, A, B, C) (no D, bias, softplus) with Triton forward and backward."""

    @staticmethod
    def forward(ctx, u: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,  # type: ignore[override]
                chunk: int, block_d: int | None):
        u, dt, A, Bm, Cm = (t.contiguous() for t in (u, dt, A, Bm, Cm))
        bsz, kd, length = u.shape
        groups, n = Bm.shape[1], A.shape[1]
        dg = kd // groups
        bd, bn = _blocks(dg, n, block_d)
        n_chunks = triton.cdiv(length, chunk)
        acc_dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
        acc = tl.float64 if acc_dtype == torch.float64 else tl.float32
        y = torch.empty(bsz, kd, length, device=u.device, dtype=acc_dtype)
        ckpt = torch.empty(bsz, kd, n_chunks + 1, n, device=u.device, dtype=acc_dtype)
        grid = (triton.cdiv(dg, bd), groups, bsz)
        with device_guard(u):
            _ssm_fwd_kernel[grid](u, dt, A, Bm, Cm, y, ckpt, kd, length, groups, n, dg, n_chunks, chunk,
                                  ACC=acc, BLOCK_D=bd, BLOCK_N=bn)
        ctx.save_for_backward(u, dt, A, Bm, Cm, ckpt)
        ctx.meta = (chunk, bd, bn, acc)
        last = ckpt[:, :, n_chunks].clone()
        ctx.mark_non_differentiable(last)
        return y, last

    @staticmethod
    @once_differentiable
    def backward(ctx, gy: Tensor, _glast: Tensor):  # type: ignore[override]
        u, dt, A, Bm, Cm, ckpt = ctx.saved_tensors
        chunk, bd, bn, acc = ctx.meta
        bsz, kd, length = u.shape
        groups, n = Bm.shape[1], A.shape[1]
        dg = kd // groups
        n_db = triton.cdiv(dg, bd)
        n_chunks = ckpt.shape[2] - 1
        opts = dict(device=u.device, dtype=ckpt.dtype)
        gu, gdt = torch.empty(bsz, kd, length, **opts), torch.empty(bsz, kd, length, **opts)
        ga = torch.empty(bsz, kd, n, **opts)
        gb = torch.empty(bsz, groups, n_db, n, length, **opts)
        gc = torch.empty(bsz, groups, n_db, n, length, **opts)
        scratch = torch.empty(bsz * groups * n_db, chunk + 1, bd, bn, **opts)
        with device_guard(u):
            _ssm_bwd_kernel[(n_db, groups, bsz)](
                u, dt, A, Bm, Cm, gy.contiguous(), ckpt, scratch, gu, gdt, ga, gb, gc,
                kd, length, groups, n, dg, n_chunks, chunk, n_db, ACC=acc, BLOCK_D=bd, BLOCK_N=bn)
        return (gu.to(u.dtype), gdt.to(dt.dtype), ga.sum(0).to(A.dtype), gb.sum(2).to(Bm.dtype),
                gc.sum(2).to(Cm.dtype), None, None)


def triton_selective_scan(
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
    block_d: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan with the Triton kernels (validated inputs; see ``selective_scan``).

    Computes in float32 (float64 for float64 input); y is float32 for half inputs,
    else the dtype of u. ``chunk_size`` is the checkpoint interval of the backward
    (default 64); ``block_d`` the channels per program (default: up to 64).
    """
    cdt = torch.float64 if u.dtype == torch.float64 else torch.float32
    out_dtype = torch.float32 if u.dtype in (torch.float16, torch.bfloat16) else u.dtype
    dt = delta.to(cdt)
    if delta_bias is not None:
        dt = dt + delta_bias.to(cdt)[:, None]
    if delta_softplus:
        dt = torch.nn.functional.softplus(dt)
    chunk = DEFAULT_CHUNK if chunk_size is None else int(chunk_size)
    y, last = _TritonSelectiveScan.apply(u, dt, A.to(cdt), B, C, chunk, block_d)
    if D is not None:
        y = torch.addcmul(y, u.to(cdt), D.to(cdt)[:, None])
    y = y.to(out_dtype)
    return (y, last) if return_last_state else y
