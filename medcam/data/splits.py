"""Seeded, stratified, optionally grouped train/val/test splits and k-fold cross-validation.

Both functions work on *targets* only (no images are read): ``(N,)`` class
indices or ``(N, K)`` multi-hot labels (items without any positive label count
as one more pseudo-label, so "No Finding" images are spread too).

Assignment is iterative stratification (Sechidis, Tsoumakas & Vlahavas, *On
the stratification of multi-label data*, ECML PKDD 2011): every part ``j``
wants ``f_j * C_k`` items of each label ``k`` and ``f_j * N`` items overall.
Labels are handled from the rarest; each unit carrying the label goes to the
part that still wants most of that label (ties: most items overall, then the
first part). For single-label targets this deals each class out in the
requested proportions, to within one unit.

With ``groups`` (one key per item: a patient, a near-duplicate cluster, ...)
the units are whole groups, so no group straddles two parts; a group carries
the label counts of all its items. Units are shuffled by ``seed`` and placed
largest first, so the same seed always gives the same split.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from ..errors import DataError

__all__ = ["stratified_split", "kfold_splits", "label_matrix"]


def label_matrix(targets: Any) -> np.ndarray:
    """``(N, L)`` label counts per item: one-hot classes, or multi-hot plus a "no label" column."""
    arr = np.asarray(targets)
    if arr.ndim == 1:
        if arr.size and (arr.min() < 0 or not np.issubdtype(arr.dtype, np.integer)):
            raise DataError("targets: class indices must be non-negative integers")
        k = int(arr.max()) + 1 if arr.size else 0
        out = np.zeros((arr.size, k), dtype=np.int64)
        out[np.arange(arr.size), arr.astype(np.int64)] = 1
        return out
    if arr.ndim == 2:
        pos = (arr > 0).astype(np.int64)
        none = (pos.sum(1) == 0).astype(np.int64)[:, None]
        return np.concatenate([pos, none], 1)
    raise DataError(f"targets must be (N,) class indices or (N, K) multi-hot, got shape {arr.shape}")


def _units(n: int, groups: Sequence[Hashable] | None) -> list[list[int]]:
    """Member indices per unit (an item, or a group of items), in first-appearance order."""
    if groups is None:
        return [[i] for i in range(n)]
    if len(groups) != n:
        raise DataError(f"groups: {len(groups)} keys for {n} items (one group key per item)")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    return list(members.values())


def _assign(labels: np.ndarray, units: list[list[int]], fractions: Sequence[float], seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    frac = np.asarray(fractions, dtype=np.float64)
    m = len(frac)
    order = rng.permutation(len(units))
    units = [units[i] for i in order]
    units.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
    counts = np.stack([labels[u].sum(0) for u in units]) if units else np.zeros((0, labels.shape[1]))
    sizes = np.array([len(u) for u in units], dtype=np.float64)
    want_label = frac[:, None] * counts.sum(0)[None, :]  # (m, L)
    want_total = frac * sizes.sum()
    part_of = np.full(len(units), -1)
    remaining = counts.copy()

    def place(u: int, score: np.ndarray) -> None:
        best = np.flatnonzero(np.isclose(score, score.max()))
        if len(best) > 1:
            totals = want_total[best]
            best = best[np.isclose(totals, totals.max())]
        j = int(best[0])
        part_of[u] = j
        want_label[j] -= counts[u]
        want_total[j] -= sizes[u]
        remaining[u] = 0

    while True:
        left = remaining.sum(0)
        live = np.flatnonzero(left > 0)
        if len(live) == 0:
            break
        k = int(live[np.argmin(left[live])])  # the rarest label still to place
        for u in np.flatnonzero((counts[:, k] > 0) & (part_of < 0)):
            place(int(u), want_label[:, k])
    for u in np.flatnonzero(part_of < 0):  # units without labels (empty targets)
        place(int(u), want_total)
    parts: list[list[int]] = [[] for _ in range(m)]
    for u, j in enumerate(part_of):
        parts[int(j)].extend(units[u])
    return [sorted(p) for p in parts]


def stratified_split(targets: Any, fractions: Mapping[str, float] | Sequence[float], *, seed: int = 0,
                     groups: Sequence[Hashable] | None = None) -> Any:
    """Split item indices into parts with the given fractions, stratified by class.

    Args:
        targets: ``(N,)`` class indices or ``(N, K)`` multi-hot labels.
        fractions: ``{"train": 0.7, "val": 0.15, "test": 0.15}`` or a sequence;
            non-negative, summing to 1 (within 1e-6).
        seed: the same seed gives the same split.
        groups: optional group key per item; a group is never split.

    Returns:
        a dict of sorted index lists (same keys) or a list (for a sequence).
    """
    names = list(fractions) if isinstance(fractions, Mapping) else None
    values = [float(fractions[k]) for k in names] if names is not None else [float(f) for f in fractions]  # type: ignore[index]
    if not values or any(f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-6:
        raise DataError(f"split fractions must be non-negative and sum to 1, got {fractions!r}")
    labels = label_matrix(targets)
    parts = _assign(labels, _units(len(labels), groups), values, seed)
    return dict(zip(names, parts)) if names is not None else parts


def kfold_splits(targets: Any, k: int, *, seed: int = 0,
                 groups: Sequence[Hashable] | None = None) -> list[tuple[list[int], list[int]]]:
    """Stratified (optionally grouped) k-fold cross-validation.

    Returns:
        ``k`` pairs ``(train indices, val indices)``; every item is in exactly
        one ``val`` part, and no group is in two of them.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k-fold needs k >= 2 folds, got {k!r}")
    labels = label_matrix(targets)
    units = _units(len(labels), groups)
    if len(units) < k:
        raise DataError(f"{k} folds need at least {k} {'groups' if groups is not None else 'items'}, got {len(units)}")
    folds = _assign(labels, units, [1.0 / k] * k, seed)
    out = []
    for i in range(k):
        train = sorted(j for f, part in enumerate(folds) if f != i for j in part)
        out.append((train, folds[i]))
    return out
