"""Deletion and insertion curves and their area under the curve (RISE).

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of
Black-box Models", BMVC 2018, section 4.1: pixels are removed from the image
(deletion) or added to a blurred canvas (insertion) in order of decreasing map
value (ties in a seeded random order), ``n`` pixels per step, and the target's probability is recorded after
each step. With ``k_s`` pixels changed at step ``s`` (``k_0 = 0``,
``k_S = H W``) and ``p_s`` the target score of the perturbed image,

    ``AUC = sum_s (k_{s+1} - k_s) / (H W) * (p_s + p_{s+1}) / 2``   (trapezoid over the fraction changed).

A faithful map makes the deletion curve fall fast (low AUC) and the insertion
curve rise fast (high AUC).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import (AttributionMetric, MetricInputs, MetricResult, Scorer, check_positive_int, check_score, chunks,
                   score_function)
from .perturb import SUBSTRATES, relevance_rank, step_counts, substrate

__all__ = ["PixelCurve", "Deletion", "Insertion", "trapezoid_auc"]


def trapezoid_auc(curves: Tensor, fractions: Tensor) -> Tensor:
    """``(B,)`` trapezoid area of ``curves`` ``(B, S)`` over the x-values ``fractions`` ``(S,)``."""
    widths = (fractions[1:] - fractions[:-1]).to(curves.dtype)
    return ((curves[:, 1:] + curves[:, :-1]) * 0.5 * widths).sum(dim=1)


class PixelCurve(AttributionMetric):
    """Shared machinery of :class:`Deletion` and :class:`Insertion`.

    Args:
        steps: number of steps; ``ceil(H W / steps)`` pixels change per step (RISE: 224 of 224 x 224).
        score: ``auto`` (softmax; sigmoid for multi-label models), ``softmax``, ``sigmoid`` or ``logit``.
        substrate: ``black``, ``blur`` or ``mean``: what removed pixels become (deletion) or the
            canvas pixels are inserted into (insertion).
        blur_sigma, blur_size: the Gaussian blur of the ``blur`` substrate (RISE: sigma 5, 11 taps).
        batch_size: perturbed images per forward pass.
        progress: a progress bar over the forward passes.
        seed: seed of the random order among pixels with equal map values.
    """

    needs = frozenset({"model", "images", "maps"})
    unit: ClassVar[str] = "AUC"
    inserting: ClassVar[bool] = False

    def __init__(self, steps: int = 50, score: str = "auto", substrate: str = "black", blur_sigma: float = 5.0,
                 blur_size: int = 11, batch_size: int = 64, progress: bool = False, seed: int = 0):
        kind = type(self).__name__.lower()
        self.steps = check_positive_int(f"{kind}.steps", steps)
        self.score = check_score(kind, score)
        if substrate not in SUBSTRATES:
            raise ValueError(f"{kind}.substrate: expected one of {', '.join(SUBSTRATES)}, got {substrate!r}")
        self.substrate = substrate
        self.blur_sigma = float(blur_sigma)
        self.blur_size = check_positive_int(f"{kind}.blur_size", blur_size)
        self.batch_size = check_positive_int(f"{kind}.batch_size", batch_size)
        self.progress = progress
        self.seed = int(seed)

    def compute(self, inputs: MetricInputs) -> MetricResult:
        images, maps, targets = inputs.images, inputs.maps, inputs.targets
        assert images is not None and maps is not None and targets is not None and inputs.model is not None
        b, _, h, w = images.shape
        rank = relevance_rank(maps, torch.Generator().manual_seed(self.seed)).view(b, 1, h, w)
        counts = step_counts(h * w, self.steps).to(images.device)
        other = substrate(images, self.substrate, self.blur_sigma, self.blur_size)
        scorer = Scorer(inputs.model, score_function(self.score, inputs.model), self.batch_size)
        n_points = counts.numel()
        rows = torch.arange(b, device=images.device).repeat_interleave(n_points)
        cols = torch.arange(n_points, device=images.device).repeat(b)
        curves = torch.empty(b * n_points, device=images.device)
        for part in chunks(rows.numel(), self.batch_size, desc=self.name, progress=self.progress):
            r, s = rows[part], cols[part]
            changed = rank[r] < counts[s].view(-1, 1, 1, 1)               # (n, 1, H, W)
            if self.inserting:
                perturbed = torch.where(changed, images[r], other[r])
            else:
                perturbed = torch.where(changed, other[r], images[r])
            curves[part] = scorer(perturbed, targets[r])
        curves = curves.view(b, n_points)
        fractions = counts.double() / (h * w)
        return MetricResult({"auc": trapezoid_auc(curves.double(), fractions)}, curves,
                            fractions.cpu().tolist())


class Deletion(PixelCurve):
    """Deletion AUC (RISE, Petsiuk et al., BMVC 2018): remove the most relevant pixels first
    (replaced by ``substrate``, black by default) and integrate the target probability over
    the fraction removed; lower is better."""

    higher_is_better = False


class Insertion(PixelCurve):
    """Insertion AUC (RISE, Petsiuk et al., BMVC 2018): insert the most relevant pixels first
    into a blurred copy of the image and integrate the target probability over the fraction
    inserted; higher is better."""

    inserting = True

    def __init__(self, steps: int = 50, score: str = "auto", substrate: str = "blur", blur_sigma: float = 5.0,
                 blur_size: int = 11, batch_size: int = 64, progress: bool = False, seed: int = 0):
        super().__init__(steps, score, substrate, blur_sigma, blur_size, batch_size, progress, seed)
