"""Confidence on the image masked by its map: average drop, increase in confidence, confidence change.

Chattopadhay et al., "Grad-CAM++: Generalized Gradient-based Visual
Explanations for Deep Convolutional Networks", WACV 2018, section 5.1: the
*explanation map* of image ``I`` is ``E = L * I`` (the map, in [0, 1], times
the image, pixel-wise). With ``Y`` the target's score on ``I`` and ``O`` its
score on ``E``:

* Average Drop ``= 100 * max(0, Y - O) / Y`` (per image; the paper averages over images), lower is better;
* Increase in Confidence ``= 100 * 1[Y < O]`` (the percentage of images whose score rises), higher is better;
* confidence change ``= O - Y``: pytorch-grad-cam's perturbation-confidence metric
  with the CAM-times-image perturbation (``CamMultImageConfidenceChange``).

The product is taken in image space ([0, 1] pixels, before the model's
normalization), as the paper multiplies the image; pytorch-grad-cam multiplies
the already normalized tensor (docs/attribution.md).
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import Tensor

from .base import AttributionMetric, MetricInputs, MetricResult, Scorer, check_positive_int, check_score, \
    score_function

__all__ = ["MaskedConfidence", "AverageDrop", "IncreaseInConfidence", "ConfidenceChange", "check_unit_maps"]


def check_unit_maps(maps: Tensor, name: str) -> None:
    """Maps multiplied into images must lie in [0, 1]."""
    low, high = float(maps.min()), float(maps.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} multiplies the image by the map, which must lie in [0, 1] (got values in "
                         f"[{low:.3g}, {high:.3g}]); pass min-max normalized maps, as explain() returns")


class MaskedConfidence(AttributionMetric):
    """Scores ``Y`` (image) and ``O`` (image times map) of the target; subclasses turn them into a value.

    Args:
        score: ``auto`` (softmax; sigmoid for multi-label models), ``softmax``, ``sigmoid`` or ``logit``.
        batch_size: images per forward pass.
    """

    needs = frozenset({"model", "images", "maps"})

    def __init__(self, score: str = "auto", batch_size: int = 64):
        self.score = check_score(type(self).__name__.lower(), score)
        self.batch_size = check_positive_int(f"{type(self).__name__.lower()}.batch_size", batch_size)

    def confidences(self, inputs: MetricInputs) -> tuple[Tensor, Tensor]:
        """``(Y, O)``, each ``(B,)``."""
        images, maps, targets = inputs.images, inputs.maps, inputs.targets
        assert images is not None and maps is not None and targets is not None and inputs.model is not None
        check_unit_maps(maps, self.name)
        scorer = Scorer(inputs.model, score_function(self.score, inputs.model), self.batch_size)
        return scorer(images, targets), scorer(images * maps[:, None].to(images.dtype), targets)

    def compute(self, inputs: MetricInputs) -> MetricResult:
        before, after = self.confidences(inputs)
        return MetricResult({self.key: self.value(before, after), "score": before, "masked_score": after})

    key: ClassVar[str] = "value"

    @abc.abstractmethod
    def value(self, before: Tensor, after: Tensor) -> Tensor:
        """``(B,)`` the metric's value from the scores ``before`` (``Y``) and ``after`` (``O``)."""


class AverageDrop(MaskedConfidence):
    """Average Drop % (Chattopadhay et al., WACV 2018, sec. 5.1): ``100 max(0, Y - O) / Y`` per image."""

    higher_is_better = False
    unit = "%"
    key = "average_drop"

    def __init__(self, score: str = "auto", batch_size: int = 64):
        if score == "logit":
            raise ValueError("average_drop divides by the score, which must be a positive confidence: use "
                             "score=auto, softmax or sigmoid")
        super().__init__(score, batch_size)

    def value(self, before: Tensor, after: Tensor) -> Tensor:
        return 100.0 * torch.clamp(before - after, min=0) / before.clamp_min(torch.finfo(before.dtype).tiny)


class IncreaseInConfidence(MaskedConfidence):
    """Increase in Confidence % (Chattopadhay et al., WACV 2018, sec. 5.1): ``100 * 1[Y < O]`` per image."""

    unit = "%"
    key = "increase_in_confidence"

    def value(self, before: Tensor, after: Tensor) -> Tensor:
        return 100.0 * (after > before).to(before.dtype)


class ConfidenceChange(MaskedConfidence):
    """Confidence change ``O - Y`` on the image times its map (pytorch-grad-cam's
    perturbation-confidence metric ``CamMultImageConfidenceChange``); higher is better."""

    key = "confidence_change"

    def value(self, before: Tensor, after: Tensor) -> Tensor:
        return after - before
