"""Public cross-scan / cross-merge: input checks and dispatch (Triton on CUDA, PyTorch otherwise).

The call signatures and layouts follow VMamba's ``cross_scan_fn`` /
``cross_merge_fn`` (Liu et al., NeurIPS 2024) so code written for it ports
unchanged; see :mod:`medcam_vmamba.kernels.csm_torch` for the routes.
"""
from __future__ import annotations

from torch import Tensor

from medcam.errors import ShapeError, SpecError

from .backend import check_backend, use_triton
from .csm_torch import torch_cross_merge, torch_cross_scan

__all__ = ["cross_scan", "cross_merge"]

_BACKENDS = ("auto", "torch", "triton")


def _check_scans(scans: int) -> int:
    if scans not in (0, 1, 2, 3):
        raise SpecError(f"scans must be 0 (cross2d), 1 (unidi), 2 (bidi) or 3 (rotations), got {scans!r}")
    return int(scans)


def _expect(t: Tensor, what: str, layout: str, ndim: int, k_dim: int | None) -> None:
    if not hasattr(t, "dim"):
        raise ShapeError(f"{what} must be a torch.Tensor of shape {layout}, got {type(t).__name__}")
    if t.dim() != ndim or (k_dim is not None and t.shape[k_dim] != 4):
        raise ShapeError(f"{what} must have shape {layout}, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ShapeError(f"{what} must be floating point, got dtype {t.dtype}")


def cross_scan(
    x: Tensor,
    in_channel_first: bool = True,
    out_channel_first: bool = True,
    one_by_one: bool = False,
    scans: int = 0,
    *,
    backend: str = "auto",
) -> Tensor:
    """Unfold a map into VMamba's 4 scan routes.

    x: (B, C, H, W) if ``in_channel_first`` else (B, H, W, C); with ``one_by_one``
    (B, 4, C, H, W) or (B, H, W, 4, C), map k taking route k.
    Returns (B, 4, C, L) if ``out_channel_first`` else (B, L, 4, C), L = H * W.
    ``scans``: 0 cross2d (row, column, both reversed), 1 unidi, 2 bidi, 3 rotations.
    ``backend``: ``"auto"`` (Triton for CUDA tensors when available), ``"torch"`` or ``"triton"``.
    """
    check_backend(backend, _BACKENDS)
    scans = _check_scans(scans)
    if one_by_one:
        _expect(x, "cross_scan input", "(B, 4, C, H, W)" if in_channel_first else "(B, H, W, 4, C)",
                5, 1 if in_channel_first else 3)
    else:
        _expect(x, "cross_scan input", "(B, C, H, W)" if in_channel_first else "(B, H, W, C)", 4, None)
    if use_triton(x, backend):
        from .csm_triton import triton_cross_scan

        return triton_cross_scan(x, in_channel_first, out_channel_first, one_by_one, scans)
    return torch_cross_scan(x, in_channel_first, out_channel_first, one_by_one, scans)


def cross_merge(
    y: Tensor,
    in_channel_first: bool = True,
    out_channel_first: bool = True,
    one_by_one: bool = False,
    scans: int = 0,
    *,
    backend: str = "auto",
) -> Tensor:
    """Fold the 4 routes back onto the grid and sum them: the adjoint of :func:`cross_scan`.

    y: (B, 4, C, H, W) if ``out_channel_first`` else (B, H, W, 4, C) (the layout of
    the routes, named as in VMamba). Returns (B, C, L) if ``in_channel_first``
    else (B, L, C); with ``one_by_one`` the maps are not summed: (B, 4, C, L) or
    (B, L, 4, C). Callers reshape L back to (H, W).
    """
    check_backend(backend, _BACKENDS)
    scans = _check_scans(scans)
    _expect(y, "cross_merge input", "(B, 4, C, H, W)" if out_channel_first else "(B, H, W, 4, C)",
            5, 1 if out_channel_first else 3)
    if use_triton(y, backend):
        from .csm_triton import triton_cross_merge

        return triton_cross_merge(y, in_channel_first, out_channel_first, one_by_one, scans)
    return torch_cross_merge(y, in_channel_first, out_channel_first, one_by_one, scans)
