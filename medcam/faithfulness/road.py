"""ROAD: RemOve And Debias (Rong et al., ICML 2022), with noisy linear imputation.

Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods", ICML 2022: a fraction ``r`` of
the pixels is removed, most relevant first (MoRF) or least relevant first
(LeRF), and imputed (:mod:`medcam.faithfulness.imputation`) instead of set to a
constant, so the model cannot read the removal pattern. With ``Y`` the target
score of the image and ``Y^MoRF_r`` / ``Y^LeRF_r`` its score after removal, averaged
over the fractions ``R``:

* ``morf = mean_r (Y^MoRF_r - Y)`` (lower is better: removing what the map calls relevant hurts);
* ``lerf = mean_r (Y^LeRF_r - Y)`` (higher is better: removing the irrelevant part does not);
* ``road = (lerf - morf) / 2`` (pytorch-grad-cam's ``ROADCombined``; higher is better).

MoRF removes the pixels at or above the map's ``(1 - r)``-quantile, LeRF those at
or below its ``r``-quantile (pytorch-grad-cam's percentile rule) when the map's
values are distinct; tied values at the boundary are broken at random (seeded),
so exactly that many pixels are removed (:func:`~medcam.faithfulness.perturb.road_removal`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .base import (AttributionMetric, MetricInputs, MetricResult, Scorer, check_fractions, check_positive_int,
                   check_score, score_function)
from .imputation import noisy_linear_impute
from .perturb import road_removal

__all__ = ["ROAD", "ORDERS", "DEFAULT_FRACTIONS"]

ORDERS = ("combined", "morf", "lerf")
#: Fractions removed: 10% to 90% (the ROAD paper's curve; pytorch-grad-cam's default percentiles).
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class ROAD(AttributionMetric):
    """ROAD with noisy linear imputation (module docstring for the formulas).

    Args:
        order: ``combined`` ((LeRF - MoRF) / 2), ``morf`` or ``lerf``: which value is the score.
        fractions: fractions of the pixels removed, each in (0, 1).
        noise: standard deviation of the imputation noise, in image units ([0, 1] pixels).
        score: ``auto`` (softmax; sigmoid for multi-label models), ``softmax``, ``sigmoid`` or ``logit``.
        seed: seed of the imputation noise and of the tie-breaking order (the same seed gives the same values).
        batch_size: images per forward pass.

    ``values``: ``road`` / ``morf`` / ``lerf`` (the chosen ``order`` first); ``curves``
    ``(B, 2 F)``: the MoRF then LeRF score differences at each fraction.
    """

    needs = frozenset({"model", "images", "maps"})

    def __init__(self, order: str = "combined", fractions: Sequence[float] = DEFAULT_FRACTIONS, noise: float = 0.01,
                 score: str = "auto", seed: int = 0, batch_size: int = 64):
        if order not in ORDERS:
            raise ValueError(f"road.order: expected one of {', '.join(ORDERS)}, got {order!r}")
        self.order = order
        self.fractions = check_fractions("road.fractions", fractions)
        self.noise = float(noise)
        if self.noise < 0:
            raise ValueError(f"road.noise must be >= 0, got {noise!r}")
        self.score = check_score("road", score)
        self.seed = int(seed)
        self.batch_size = check_positive_int("road.batch_size", batch_size)
        self.higher_is_better = order != "morf"

    def differences(self, inputs: MetricInputs, most_relevant: bool) -> Tensor:
        """``(B, F)``: score after removing each fraction minus the score of the image."""
        images, maps, targets = inputs.images, inputs.maps, inputs.targets
        assert images is not None and maps is not None and targets is not None and inputs.model is not None
        scorer = Scorer(inputs.model, score_function(self.score, inputs.model), self.batch_size)
        generator = torch.Generator().manual_seed(self.seed + (0 if most_relevant else 1))
        base = scorer(images, targets)
        columns = []
        for fraction in self.fractions:
            removed = road_removal(maps, fraction, most_relevant, generator)
            imputed = noisy_linear_impute(images, removed, self.noise, generator)
            columns.append(scorer(imputed, targets) - base)
        return torch.stack(columns, dim=1)

    def compute(self, inputs: MetricInputs) -> MetricResult:
        morf = self.differences(inputs, True)
        lerf = self.differences(inputs, False)
        values = {"road": (lerf.mean(1) - morf.mean(1)) / 2, "morf": morf.mean(1), "lerf": lerf.mean(1)}
        first = "road" if self.order == "combined" else self.order
        ordered = {first: values[first], **{k: v for k, v in values.items() if k != first}}
        steps = [f"morf {f:g}" for f in self.fractions] + [f"lerf {f:g}" for f in self.fractions]
        return MetricResult(ordered, torch.cat([morf, lerf], dim=1), steps)
