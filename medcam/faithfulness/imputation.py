"""Noisy linear imputation (ROAD).

Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods", ICML 2022, section 4: every
removed pixel ``i`` takes the weighted mean of its 8 neighbours ``N(i)`` inside
the image, direct neighbours weighing ``1/6`` and diagonal ones ``1/12``:

    ``x_i = sum_{j in N(i)} w_ij x_j / sum_{j in N(i)} w_ij``   for every removed ``i``,

where ``x_j`` is the known value for kept neighbours and the unknown for removed
ones. That is one sparse linear system per image (shared by its channels):
``(sum_j w_ij) x_i - sum_{j removed} w_ij x_j = sum_{j kept} w_ij v_j``; it is
symmetric and diagonally dominant, solved exactly with SciPy's sparse LU
(SuperLU, minimum-degree ordering of the symmetric pattern). Then
``noise * N(0, 1)`` is added to each imputed value, so the removed pattern
cannot be read back from perfectly smooth fills.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["NEIGHBOURS", "linear_impute", "noisy_linear_impute"]

#: ``(row offset, column offset, weight)`` of the 8 neighbours (ROAD's weights).
NEIGHBOURS: tuple[tuple[int, int, float], ...] = (
    (-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12),
    (0, -1, 1 / 6), (0, 1, 1 / 6),
    (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12),
)


def linear_impute(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The imputed image: ``image`` ``(C, H, W)`` float64 with the ``removed`` ``(H, W)`` pixels solved for.

    If every pixel is removed there is nothing to interpolate from: each channel
    becomes its mean over the image.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = image.shape
    flat = image.reshape(c, h * w)
    removed_flat = removed.reshape(-1)
    unknown = np.flatnonzero(removed_flat)
    out = flat.copy()
    if unknown.size == 0:
        return image.copy()
    if unknown.size == h * w:
        return np.broadcast_to(flat.mean(axis=1, keepdims=True), flat.shape).reshape(c, h, w).copy()
    variable = np.full(h * w, -1, dtype=np.int64)
    variable[unknown] = np.arange(unknown.size)
    rows, cols = np.divmod(unknown, w)
    diagonal = np.zeros(unknown.size)
    rhs = np.zeros((unknown.size, c))
    entry_rows, entry_cols, entry_values = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = rows + dy, cols + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        diagonal += weight * inside
        eq = np.flatnonzero(inside)
        neighbour = ny[eq] * w + nx[eq]
        is_unknown = removed_flat[neighbour]
        entry_rows.append(eq[is_unknown])
        entry_cols.append(variable[neighbour[is_unknown]])
        entry_values.append(np.full(int(is_unknown.sum()), -weight))
        known_eq, known_px = eq[~is_unknown], neighbour[~is_unknown]
        np.add.at(rhs, known_eq, weight * flat[:, known_px].T)
    n = unknown.size
    matrix = coo_matrix((np.concatenate(entry_values + [diagonal]),
                         (np.concatenate(entry_rows + [np.arange(n)]), np.concatenate(entry_cols + [np.arange(n)]))),
                        shape=(n, n)).tocsc()
    solution = spsolve(matrix, rhs, permc_spec="MMD_AT_PLUS_A")  # symmetric pattern: minimum degree on A^T + A
    out[:, unknown] = np.asarray(solution).reshape(n, c).T
    return out.reshape(c, h, w)


def noisy_linear_impute(images: Tensor, removed: Tensor, noise: float = 0.01,
                        generator: torch.Generator | None = None) -> Tensor:
    """Noisy linear imputation of a batch.

    Args:
        images: ``(B, C, H, W)``.
        removed: ``(B, H, W)`` bool, the pixels to impute.
        noise: standard deviation of the Gaussian noise added to imputed values (image units).
        generator: CPU random generator of the noise (for reproducible results).

    Returns:
        ``(B, C, H, W)`` on ``images``' device and dtype; kept pixels are unchanged.
    """
    source = images.detach().double().cpu().numpy()
    masks = removed.detach().cpu().numpy().astype(bool)
    filled = np.stack([linear_impute(source[i], masks[i]) for i in range(source.shape[0])])
    out = torch.from_numpy(filled)
    if noise:
        mask = torch.from_numpy(masks)[:, None].expand_as(out)
        out = torch.where(mask, out + noise * torch.randn(out.shape, generator=generator, dtype=out.dtype), out)
    return out.to(device=images.device, dtype=images.dtype)
