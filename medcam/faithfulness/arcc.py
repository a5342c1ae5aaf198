"""Complexity, Coherency, ADCC and ARCC: one-number summaries of a CAM's quality.

Poppi, Cornia, Baraldi & Cucchiara, "Revisiting The Evaluation of Class
Activation Mapping for Explainability: A Novel Metric and Experimental
Analysis", CVPR Workshops 2021 (arXiv:2104.10252), section 3, for maps ``L``
in [0, 1] of image ``x`` and target ``c``:

* Complexity ``= ||L||_1 / (H W)`` (eq. 6; lower is better: a sparse map);
* Coherency ``= (Pearson(L, L') + 1) / 2`` (eq. 5) with ``L'`` the method's map of
  ``x * L`` for the same target (higher is better: the map explains its own evidence);
* ADCC ``= 3 / (1 / Coherency + 1 / (1 - Complexity) + 1 / (1 - AverageDrop / 100))``
  (eq. 7, the harmonic mean; higher is better).

ARCC (pytorch-grad-cam 1.5.7, ``metrics/arcc.py``, after Refine-CAM, arXiv:2605.14641)
replaces Average Drop by ROAD: ``3 / (1 / Coherency + 1 / (1 - Complexity) +
1 / clip(2 ROAD, 0, 1))`` with ROAD combined over 20/40/60/80% removed. A
harmonic mean with a zero term is 0 (pytorch-grad-cam adds ``1e-8`` to each
denominator instead, which gives ``~3e-8``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .base import AttributionMetric, MetricInputs, MetricResult, check_positive_int
from .confidence import AverageDrop, check_unit_maps
from .road import ROAD
from .similarity import pearson

__all__ = ["Complexity", "Coherency", "ADCC", "ARCC", "harmonic_mean", "ARCC_FRACTIONS"]

#: ROAD fractions of ARCC (pytorch-grad-cam's ``road_percentiles=[20, 40, 60, 80]``).
ARCC_FRACTIONS = (0.2, 0.4, 0.6, 0.8)


def harmonic_mean(*terms: Tensor) -> Tensor:
    """``n / sum_i (1 / t_i)`` per element, 0 where any term is 0 (terms are >= 0)."""
    stacked = torch.stack([t.double() for t in terms])
    zero = (stacked <= 0).any(dim=0)
    value = len(terms) / (1.0 / stacked.clamp_min(1e-300)).sum(dim=0)
    return torch.where(zero, torch.zeros_like(value), value)


def complexity(maps: Tensor) -> Tensor:
    """``(B,)``: ``mean |L|`` over the pixels (Poppi et al. 2021, eq. 6)."""
    return maps.abs().flatten(1).double().mean(dim=1)


def coherency(inputs: MetricInputs) -> Tensor:
    """``(B,)``: ``(Pearson(L, method(x * L)) + 1) / 2`` (Poppi et al. 2021, eq. 5)."""
    images, maps, model = inputs.images, inputs.maps, inputs.model
    assert images is not None and maps is not None and model is not None
    check_unit_maps(maps, "coherency")
    again = inputs.explain(model, images * maps[:, None].to(images.dtype))
    return (pearson(again, maps, eps=1e-8) + 1) / 2


class Complexity(AttributionMetric):
    """Complexity (Poppi et al., CVPR Workshops 2021, eq. 6): ``||L||_1 / (H W)``; lower is better."""

    needs = frozenset({"maps"})
    higher_is_better = False

    def compute(self, inputs: MetricInputs) -> MetricResult:
        assert inputs.maps is not None
        return MetricResult({"complexity": complexity(inputs.maps)})


class Coherency(AttributionMetric):
    """Coherency (Poppi et al., CVPR Workshops 2021, eq. 5): ``(Pearson(L, method(x * L)) + 1) / 2``."""

    needs = frozenset({"model", "images", "maps", "method"})

    def compute(self, inputs: MetricInputs) -> MetricResult:
        return MetricResult({"coherency": coherency(inputs)})


class ADCC(AttributionMetric):
    """ADCC (Poppi et al., CVPR Workshops 2021, eq. 7): harmonic mean of Coherency,
    ``1 - Complexity`` and ``1 - AverageDrop / 100``; higher is better.

    Args:
        score: the confidence of Average Drop (``auto``, ``softmax`` or ``sigmoid``).
        batch_size: images per forward pass.
    """

    needs = frozenset({"model", "images", "maps", "method"})

    def __init__(self, score: str = "auto", batch_size: int = 64):
        self.drop = AverageDrop(score=score, batch_size=batch_size)

    def compute(self, inputs: MetricInputs) -> MetricResult:
        coh = coherency(inputs)
        com = complexity(inputs.maps)
        drop = self.drop.compute(inputs).values["average_drop"].double()
        value = harmonic_mean(coh, 1 - com, 1 - drop / 100)
        return MetricResult({"adcc": value, "coherency": coh, "complexity": com, "average_drop": drop})


class ARCC(AttributionMetric):
    """ARCC (pytorch-grad-cam, after Refine-CAM): harmonic mean of Coherency,
    ``1 - Complexity`` and ``clip(2 ROAD, 0, 1)``; higher is better.

    Args:
        fractions: ROAD's fractions removed (pytorch-grad-cam: 20, 40, 60, 80%).
        noise, seed: ROAD's imputation noise and its seed.
        score: the class score of ROAD (``auto`` = softmax; pytorch-grad-cam uses whatever target it is given).
        batch_size: images per forward pass.
    """

    needs = frozenset({"model", "images", "maps", "method"})

    def __init__(self, fractions: Sequence[float] = ARCC_FRACTIONS, noise: float = 0.01, score: str = "auto",
                 seed: int = 0, batch_size: int = 64):
        self.road = ROAD("combined", fractions, noise, score, seed, check_positive_int("arcc.batch_size", batch_size))

    def compute(self, inputs: MetricInputs) -> MetricResult:
        coh = coherency(inputs)
        com = complexity(inputs.maps)
        road = self.road.compute(inputs).values["road"].double()
        value = harmonic_mean(coh, 1 - com, (2 * road).clamp(0, 1))
        return MetricResult({"arcc": value, "coherency": coh, "complexity": com, "road": road})
