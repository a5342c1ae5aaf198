"""The protocol of attribution metrics and what they share: inputs, target scores, results.

A metric scores attribution maps of a batch: how faithful they are to the
model (deletion, insertion, ROAD, confidence changes), whether they survive a
sanity check (model randomisation) or whether they point at the lesion
(pointing games). Every metric is an :class:`AttributionMetric`, built by name
from the ``metrics`` registry (``medcam list metrics``)::

    import medcam
    maps = medcam.explain(model, images, "gradcam", target=labels)
    deletion = medcam.build_metric("deletion")
    auc = deletion(model, images, maps, target=labels)       # (B,) one value per image
    result = deletion.run(model, images, maps, target=labels)
    result.values["auc"], result.curves, result.steps        # the curve behind it

Conventions (every metric):

* ``images`` ``(B, C, H, W)`` in [0, 1] (the model normalizes them itself);
  perturbations (masking, imputation, blurring) happen in this image space.
* ``maps`` ``(B, H, W)`` (or ``(B, h, w)``, resized bilinearly to ``(H, W)``),
  higher = more relevant; ``explain()`` returns them min-max normalized.
* ``target`` as in :mod:`medcam.attribution`: None (predicted class), an int
  or one class per image (never truncated).
* the model runs in eval mode without a graph; its modes are restored.
* the *score* of a target is, by default (``score="auto"``), its softmax
  probability (sigmoid for multi-label models); ``"logit"`` uses the logit.
* the result holds one value per image (``values``: name -> ``(B,)``; the first
  is the metric's score), and optionally per-image curves ``(B, S)``.
"""
from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from medcam.attribution_inputs import (TargetLike, check_attribution_input, logits_of, model_device, preserved_state,
                                       resize_maps, resolve_targets)
from medcam.errors import ShapeError, SpecError

__all__ = ["AttributionMetric", "MetricInputs", "MetricResult", "Scorer", "SCORES", "score_function",
           "check_positive_int", "check_fractions", "chunks"]

#: How a metric turns logits ``(N, K)`` into the score of each class.
SCORES: dict[str, Callable[[Tensor], Tensor]] = {
    "softmax": lambda logits: torch.softmax(logits, dim=1),
    "sigmoid": torch.sigmoid,
    "logit": lambda logits: logits,
}
SCORE_NAMES = ("auto", *SCORES)


def score_function(score: str, model: nn.Module | None) -> Callable[[Tensor], Tensor]:
    """The class-score function for ``score``; ``"auto"`` is sigmoid for multi-label models, else softmax."""
    if score == "auto":
        return SCORES["sigmoid" if bool(getattr(model, "multilabel", False)) else "softmax"]
    return SCORES[score]


def check_score(name: str, score: str) -> str:
    if score not in SCORE_NAMES:
        from medcam.registry import did_you_mean

        raise SpecError(f"{name}.score: expected one of {', '.join(SCORE_NAMES)}, got {score!r}"
                        f"{did_you_mean(str(score), SCORE_NAMES)}")
    return score


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{name}: expected a positive integer, got {value!r}")
    return value


def check_fractions(name: str, fractions: Sequence[float]) -> tuple[float, ...]:
    """A non-empty sequence of numbers in (0, 1)."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError) as err:
        raise SpecError(f"{name}: expected a list of fractions in (0, 1), got {fractions!r}") from err
    if not values or any(not 0.0 < f < 1.0 for f in values):
        raise SpecError(f"{name}: expected a non-empty list of fractions in (0, 1), got {list(fractions)!r}")
    return values


def chunks(total: int, size: int, *, desc: str, progress: bool) -> Iterator[slice]:
    """Slices ``[start, start + size)`` covering ``range(total)``, with a progress bar when there are several."""
    starts = range(0, total, size)
    for start in tqdm(starts, desc=desc, leave=False, disable=not progress or len(starts) <= 1):
        yield slice(start, min(start + size, total))


class Scorer:
    """Target scores of a model on batches of images, ``batch_size`` images per forward pass, no graph.

    Args:
        model: the model (in whatever mode the caller set).
        score: class-score function ``(N, K) logits -> (N, K)``.
        batch_size: images per forward pass.
    """

    def __init__(self, model: nn.Module, score: Callable[[Tensor], Tensor], batch_size: int = 64):
        self.model = model
        self.score = score
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: Tensor, targets: Tensor) -> Tensor:
        """``(N,)`` float32 scores of ``targets`` ``(N,)`` for ``images`` ``(N, C, H, W)`` in [0, 1].

        The images are the metric's own perturbed copies of checked inputs (ROAD's noisy
        imputation may leave [0, 1] by the noise), so the model's pixel-range check is skipped.
        """
        from ..attribution_inputs import checked_once

        out = []
        with checked_once(self.model):
            for start in range(0, images.shape[0], self.batch_size):
                logits = logits_of(self.model(images[start:start + self.batch_size])).float()
                scores = self.score(logits)
                out.append(scores.gather(1, targets[start:start + self.batch_size, None])[:, 0])
        return torch.cat(out) if out else images.new_zeros(0)


@dataclass
class MetricInputs:
    """What :meth:`AttributionMetric.compute` reads (validated, on the model's device).

    Attributes:
        model: the model (eval mode unless the caller asked otherwise), or None.
        images: ``(B, C, H, W)`` in [0, 1], or None.
        maps: ``(B, H, W)`` float32 at image resolution, or None.
        targets: ``(B,)`` int64 classes (None for metrics that need neither model nor images).
        method: an :class:`~medcam.attribution.Attribution`, or None.
        regions: ``(B, H, W)`` bool ground-truth regions, or None.
    """

    model: nn.Module | None
    images: Tensor | None
    maps: Tensor | None
    targets: Tensor | None
    method: Any = None
    regions: Tensor | None = None

    def explain(self, model: nn.Module, images: Tensor) -> Tensor:
        """The method's normalized maps ``(B, H, W)`` of ``model`` on ``images`` for :attr:`targets`."""
        assert self.method is not None and self.targets is not None
        return self.method(model, images, target=self.targets).float()


@dataclass
class MetricResult:
    """One value per image for every quantity a metric reports, plus optional curves.

    Attributes:
        values: name -> ``(B,)`` float tensor; the first entry is the metric's score.
        curves: ``(B, S)`` per-image curve behind the score (deletion, randomisation), or None.
        steps: the ``S`` x-values of ``curves`` (fractions, module names), or None.
    """

    values: dict[str, Tensor]
    curves: Tensor | None = None
    steps: list[Any] | None = field(default=None)

    @property
    def scores(self) -> Tensor:
        """``(B,)``: the metric's score per image (the first of :attr:`values`)."""
        return next(iter(self.values.values()))


class AttributionMetric(abc.ABC):
    """Base class of attribution metrics (see the module docstring for the conventions).

    Class attributes a metric sets:
        needs: which inputs :meth:`compute` reads, among ``"model"``, ``"images"``,
            ``"maps"``, ``"method"`` and ``"regions"``.
        higher_is_better: the direction of the score (may be set per instance).
        unit: what the score measures in, for tables (``"%"``, ``"AUC"``, ...).
    """

    needs: ClassVar[frozenset[str]] = frozenset({"model", "images", "maps"})
    higher_is_better: bool = True
    unit: ClassVar[str] = ""
    spec: dict[str, Any] | None = None

    @abc.abstractmethod
    def compute(self, inputs: MetricInputs) -> MetricResult:
        """Per-image values for validated inputs."""

    @property
    def name(self) -> str:
        return (self.spec or {}).get("name") or type(self).__name__.lower()

    def __repr__(self) -> str:
        params = {k: v for k, v in (self.spec or {}).items() if k != "name"}
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"

    def __call__(self, model: nn.Module | None = None, images: Tensor | None = None, maps: Tensor | None = None,
                 target: TargetLike = None, *, method: Any = None, regions: Tensor | None = None,
                 eval_mode: bool = True) -> Tensor:
        """``(B,)`` the metric's score per image; see :meth:`run`."""
        return self.run(model, images, maps, target, method=method, regions=regions, eval_mode=eval_mode).scores

    def run(self, model: nn.Module | None = None, images: Tensor | None = None, maps: Tensor | None = None,
            target: TargetLike = None, *, method: Any = None, regions: Tensor | None = None,
            eval_mode: bool = True) -> MetricResult:
        """Score ``maps`` of ``images`` (what the metric ``needs`` must be given).

        Args:
            model: the explained model (a :class:`~medcam.model.MedcamModel` or a module returning logits).
            images: ``(B, C, H, W)`` in [0, 1].
            maps: ``(B, H, W)`` attribution maps (``(B, h, w)`` is resized bilinearly to ``(H, W)``).
            target: None (predicted class), an int, or one class per image.
            method: attribution method (name, part spec or built) for metrics that recompute maps.
            regions: ``(B, H, W)`` bool ground-truth regions (lesion masks) for the pointing games.
            eval_mode: run the model in eval mode (restored afterwards).

        Returns:
            :class:`MetricResult`; ``values`` hold ``(B,)`` tensors on the CPU.
        """
        missing = [n for n in ("model", "images", "maps", "method", "regions") if n in self.needs
                   and {"model": model, "images": images, "maps": maps, "method": method, "regions": regions}[n] is None]
        if missing:
            raise ValueError(f"metric {self.name} needs {', '.join(missing)}")
        with contextlib.ExitStack() as stack:
            if model is not None:
                stack.enter_context(preserved_state(model, eval_mode))
            inputs = self._inputs(model, images, maps, target, method, regions)
            result = self.compute(inputs)
        values = {k: v.detach().float().cpu() for k, v in result.values.items()}
        curves = None if result.curves is None else result.curves.detach().float().cpu()
        return MetricResult(values, curves, result.steps)

    # -- validation ----------------------------------------------------------------
    def _inputs(self, model: nn.Module | None, images: Tensor | None, maps: Tensor | None, target: TargetLike,
                method: Any, regions: Tensor | None) -> MetricInputs:
        batch = size = None
        device = None
        if images is not None:
            images = check_attribution_input(model, images) if model is not None else _plain_images(images)
            device = model_device(model, images.device) if model is not None else images.device
            images = images.to(device)
            batch, size = images.shape[0], tuple(images.shape[-2:])
        if maps is not None:
            maps = _as_maps(maps, batch, size)
            maps = maps.to(device) if device is not None else maps
            batch = maps.shape[0] if batch is None else batch
            size = tuple(maps.shape[-2:]) if size is None else size
        if regions is not None:
            regions = _as_regions(regions, batch, size)
            regions = regions.to(maps.device if maps is not None else device or regions.device)
        targets = _targets(model, images, target) if model is not None and images is not None else None
        if method is not None:
            from medcam.attribution import _build

            method = _build(method, {})
        return MetricInputs(model=model, images=images, maps=maps, targets=targets, method=method, regions=regions)


def _plain_images(images: Any) -> Tensor:
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ShapeError(f"images must be a floating point (B, C, H, W) tensor, got {shape}")
    return images


def _as_maps(maps: Any, batch: int | None, size: tuple[int, ...] | None) -> Tensor:
    if not isinstance(maps, Tensor):
        raise ShapeError(f"maps must be a torch.Tensor (B, H, W), got {type(maps).__name__}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ShapeError(f"maps must have shape (B, H, W), got {tuple(maps.shape)} (one map per image: pass the "
                         f"maps of one target)")
    if batch is not None and maps.shape[0] != batch:
        raise ShapeError(f"maps hold {maps.shape[0]} maps but there are {batch} images")
    maps = maps.detach().float()
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("maps contain NaN or infinite values")
    if size is not None and tuple(maps.shape[-2:]) != size:
        maps = resize_maps(maps, size)
    return maps


def _as_regions(regions: Any, batch: int | None, size: tuple[int, ...] | None) -> Tensor:
    if not isinstance(regions, Tensor) or regions.dim() != 3:
        shape = tuple(regions.shape) if isinstance(regions, Tensor) else type(regions).__name__
        raise ShapeError(f"regions must be (B, H, W) masks, got {shape}")
    if batch is not None and regions.shape[0] != batch:
        raise ShapeError(f"regions hold {regions.shape[0]} masks but there are {batch} maps")
    if size is not None and tuple(regions.shape[-2:]) != size:
        raise ShapeError(f"regions are {tuple(regions.shape[-2:])} but the maps are {size}; give masks at the "
                         f"maps' resolution")
    return regions.bool()


def _targets(model: nn.Module, images: Tensor, target: TargetLike) -> Tensor:
    num_classes = getattr(model, "num_classes", None)
    if target is None or num_classes is None:
        with torch.no_grad():
            logits = logits_of(model(images))
        table, several = resolve_targets(target, images.shape[0], logits.shape[1], logits)
    else:
        table, several = resolve_targets(target, images.shape[0], int(num_classes))
    if several:
        raise ShapeError("metrics take one target per image, not a (B, T) table")
    return table[:, 0].to(images.device)
