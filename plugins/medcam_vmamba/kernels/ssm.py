"""Public selective scan: input checks and dispatch to mamba-ssm, medcam's Triton kernel or PyTorch.

``"auto"`` picks, for CUDA tensors, mamba-ssm's ``selective_scan_fn`` when the
optional ``mamba_ssm`` imports, else medcam's Triton kernel when triton imports,
else the chunked PyTorch scan; CPU (and any other device) always takes the
chunked PyTorch scan and never touches ``torch.cuda``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import Tensor

from medcam.errors import PluginError, ShapeError, SpecError

from .backend import check_backend, use_triton
from .ssm_torch import torch_selective_scan

__all__ = ["selective_scan", "mamba_available"]

_BACKENDS = ("auto", "torch", "triton", "mamba")


@functools.lru_cache(maxsize=None)
def _mamba_fn() -> Callable[..., Any] | None:
    """mamba-ssm's ``selective_scan_fn``, or None when it does not import (e.g. no CUDA build)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # released mamba-ssm raises ModuleNotFoundError without its CUDA extension
        return None
    return selective_scan_fn


def mamba_available() -> bool:
    """True when mamba-ssm's compiled selective scan imports."""
    return _mamba_fn() is not None


def _as_groups(t: Tensor, name: str, bsz: int, kd: int, n: int, length: int) -> Tensor:
    """B or C as (B, G, N, L): accepts (B, G, N, L), (B, N, L) (one group) or (KD, N) (fixed per channel)."""
    if t.dim() == 4 and t.shape[0] == bsz and t.shape[2] == n and t.shape[3] == length and t.shape[1] > 0:
        if kd % t.shape[1]:
            raise ShapeError(f"{name} has {t.shape[1]} groups, which does not divide the {kd} channels of u")
        return t
    if t.dim() == 3 and tuple(t.shape) == (bsz, n, length):
        return t.unsqueeze(1)
    if t.dim() == 2 and tuple(t.shape) == (kd, n):
        return t[None, :, :, None].expand(bsz, kd, n, length)
    raise ShapeError(f"{name} must have shape (B, G, N, L) = ({bsz}, G, {n}, {length}) with G dividing {kd}, "
                     f"or ({bsz}, {n}, {length}) or ({kd}, {n}); got {tuple(t.shape)}")


def _check(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
           delta_bias: Tensor | None) -> tuple[Tensor, Tensor]:
    for name, t in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D),
                    ("delta_bias", delta_bias)):
        if t is None and name in ("D", "delta_bias"):
            continue
        if not hasattr(t, "dim"):
            raise ShapeError(f"selective_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex():
            raise ShapeError(f"selective_scan: complex {name} is not supported (real A, B, C only)")
        if not t.is_floating_point():
            raise ShapeError(f"selective_scan: {name} must be floating point, got dtype {t.dtype}")
        if t.device != u.device:
            raise ShapeError(f"selective_scan: {name} is on {t.device} but u is on {u.device}")
    if u.dim() != 3:
        raise ShapeError(f"selective_scan: u must have shape (B, KD, L), got {tuple(u.shape)}")
    bsz, kd, length = u.shape
    if length == 0:
        raise ShapeError("selective_scan: u has sequence length L = 0")
    if delta.shape != u.shape:
        raise ShapeError(f"selective_scan: delta must have the shape of u {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != kd:
        raise ShapeError(f"selective_scan: A must have shape (KD, N) = ({kd}, N), got {tuple(A.shape)}")
    n = A.shape[1]
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (kd,):
            raise ShapeError(f"selective_scan: {name} must have shape (KD,) = ({kd},), got {tuple(t.shape)}")
    return _as_groups(B, "B", bsz, kd, n, length), _as_groups(C, "C", bsz, kd, n, length)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    backend: str = "auto",
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan of Mamba (Gu and Dao, 2023), with mamba-ssm's semantics.

    With dt = softplus(delta + delta_bias) (bias and softplus optional), per
    channel d and state n, h_{-1} = 0:
    ``h_l = exp(dt_l A) h_{l-1} + dt_l B_l u_l``, ``y_l = C_l . h_l + D u_l``.

    u, delta: (B, KD, L); A: (KD, N) real; B, C: (B, G, N, L), each group of
    KD / G consecutive channels sharing one B/C (VMamba: G = 4 directions), also
    (B, N, L) or (KD, N); D, delta_bias: (KD,).
    Returns y (B, KD, L), float32 for float16/bfloat16 inputs (as VMamba's "oflex"
    kernel), else the dtype of u; with ``return_last_state`` also h_{L-1} (B, KD, N)
    (no gradient). ``backend``: ``"auto"``, ``"torch"`` (chunked scan, any device),
    ``"triton"`` (CUDA, or CPU under ``TRITON_INTERPRET=1``) or ``"mamba"`` (mamba-ssm,
    CUDA). ``chunk_size`` sets the chunk of the torch and Triton paths (default ~sqrt(L)
    for torch, 64 for Triton).
    """
    check_backend(backend, _BACKENDS)
    B, C = _check(u, delta, A, B, C, D, delta_bias)
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise SpecError(f"selective_scan: chunk_size must be a positive integer, got {chunk_size!r}")
    args = (u, delta, A, B, C, D, delta_bias, delta_softplus, return_last_state)
    on_cuda = u.device.type == "cuda"
    if backend == "mamba" or (backend == "auto" and on_cuda and mamba_available()):
        return _run_mamba(*args)
    if use_triton(u, backend):
        from .ssm_triton import triton_selective_scan

        return triton_selective_scan(*args, chunk_size=chunk_size)
    return torch_selective_scan(*args, chunk_size=chunk_size)


def _run_mamba(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
               delta_bias: Tensor | None, delta_softplus: bool,
               return_last_state: bool) -> Tensor | tuple[Tensor, Tensor]:
    """mamba-ssm's CUDA kernel; half inputs give a float32 output like the other paths."""
    if u.device.type != "cuda":  # checked first: CPU calls never import mamba-ssm
        raise SpecError(f"backend='mamba' runs on CUDA tensors only, got a {u.device.type} tensor; "
                        "use backend='auto' or 'torch'")
    fn = _mamba_fn()
    if fn is None:
        raise PluginError("backend='mamba' needs mamba-ssm with its compiled CUDA extension "
                          "(pip install 'medcam[cuda]'); use backend='auto', 'triton' or 'torch'")
    half = u.dtype in (torch.float16, torch.bfloat16)
    out = fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
             D=None if D is None else D.float(), z=None,
             delta_bias=None if delta_bias is None else delta_bias.float(),
             delta_softplus=delta_softplus, return_last_state=return_last_state)
    if return_last_state:
        y, last = out
        return (y.float() if half else y), last
    return out.float() if half else out
