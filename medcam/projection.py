"""First principal components of per-channel maps: the projections of the Eigen-CAM family and of eigen smoothing.

For one map stack ``T`` ``(C, h, w)``, ``O`` is the ``(h w, C)`` matrix of its
positions (rows) by channels (columns); ``O = U S V^T`` is its SVD and the
projection ``O v_1`` on the first right singular vector, reshaped to ``(h, w)``,
is the map. ``center`` subtracts each channel's spatial mean first (a PCA).
The sign of ``v_1`` is arbitrary; :data:`SIGN_RULES` fix it.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["first_component", "kernel_first_component", "SIGN_RULES"]


def _sign_reference(projection: Tensor, terms: Tensor) -> Tensor:
    """+1 / -1 per map: positive correlation with the channel sum of the terms (medcam's rule)."""
    reference = terms.sum(dim=1).flatten(1)
    reference = reference - reference.mean(dim=1, keepdim=True)
    return torch.where((projection * reference).sum(dim=1) < 0, -1.0, 1.0)


def _sign_extreme(projection: Tensor, terms: Tensor) -> Tensor:
    """+1 / -1 per map: flip when ``|min| > |max|`` (Seg-Eigen-CAM, eq. 13)."""
    return torch.where(projection.amin(dim=1).abs() > projection.amax(dim=1).abs(), -1.0, 1.0)


#: How the sign of a projection is chosen: ``"reference"`` (correlate with the channel sum), ``"extreme"``.
SIGN_RULES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"reference": _sign_reference, "extreme": _sign_extreme}


def first_component(terms: Tensor, center: bool = True, sign: str = "reference") -> Tensor:
    """``(N, h, w)``: projections of stacks ``terms`` ``(N, C, h, w)`` on their first right singular vector."""
    n, c, h, w = terms.shape
    matrix = terms.flatten(2).transpose(1, 2).double()                     # (N, hw, C)
    if center:
        matrix = matrix - matrix.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    projection = torch.einsum("nqc,nc->nq", matrix, vh[:, 0])              # (N, hw)
    projection = projection * SIGN_RULES[sign](projection, terms.double())[:, None].to(projection.dtype)
    return projection.view(n, h, w).to(terms.dtype)


def kernel_first_component(terms: Tensor, gamma: float | None = None, coef0: float = 1.0,
                           sign: str = "reference") -> Tensor:
    """``(N, h, w)``: first kernel-PCA component (Schölkopf et al., 1998) of the centred positions of
    ``terms`` ``(N, C, h, w)`` under the sigmoid kernel ``k(a, b) = tanh(gamma <a, b> + coef0)``
    (``gamma`` default ``1 / C``, as scikit-learn): with ``K~`` the double-centred kernel matrix and
    ``(lambda_1, a_1)`` its top eigenpair, the projection of the positions is ``sqrt(lambda_1) a_1``."""
    n, c, h, w = terms.shape
    x = terms.flatten(2).transpose(1, 2).double()                          # (N, hw, C)
    x = x - x.mean(dim=1, keepdim=True)
    g = 1.0 / c if gamma is None else float(gamma)
    kernel = torch.tanh(g * x @ x.transpose(1, 2) + coef0)                 # (N, hw, hw)
    kernel = kernel - kernel.mean(dim=1, keepdim=True) - kernel.mean(dim=2, keepdim=True) \
        + kernel.mean(dim=(1, 2), keepdim=True)
    values, vectors = torch.linalg.eigh(kernel)
    projection = vectors[:, :, -1] * values[:, -1:].clamp_min(0).sqrt()
    projection = projection * SIGN_RULES[sign](projection, terms.double())[:, None]
    return projection.view(n, h, w).to(terms.dtype)
