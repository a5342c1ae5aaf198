"""Model-parameter randomisation sanity check (Adebayo et al., NeurIPS 2018).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018, section 3: the weights of the model are re-initialised
layer by layer from the output towards the input (*cascading* randomisation);
after each layer the method's map is recomputed and compared with the map of
the trained model. A method whose maps stay similar while the model it explains
is destroyed does not explain the model. Similarities (per image, per stage):

* Spearman rank correlation of the two maps (:func:`~medcam.faithfulness.similarity.spearman`);
* SSIM (:func:`~medcam.faithfulness.similarity.ssim`, maps in [0, 1], ``data_range=1``).

Lower is better (the maps should change). A stage whose randomised map is
constant has no rank correlation (NaN); ``reduce="mean"`` skips it. The *layers* are the modules that
own a ``reset_parameters()`` (convolutions, linear layers, normalization
layers), in reverse ``named_modules()`` order, each re-initialised with its own
``reset_parameters()`` under ``torch.manual_seed(seed)`` (as Quantus's
``MPRT``, whose ``seed`` is ``seed - 1`` of ours). ``order="independent"``
randomises one layer at a time on the trained model instead.
The model itself is never modified: a deep copy is randomised.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from tqdm.auto import tqdm

from .base import AttributionMetric, MetricInputs, MetricResult
from .similarity import spearman, ssim

__all__ = ["ModelRandomization", "randomizable_layers", "ORDERS", "REDUCTIONS"]

ORDERS = ("top_down", "independent")
REDUCTIONS = ("mean", "last")


def randomizable_layers(model: nn.Module) -> list[str]:
    """Names of the modules with a ``reset_parameters()``, output side first (reverse ``named_modules()``)."""
    names = [name for name, module in model.named_modules() if callable(getattr(module, "reset_parameters", None))]
    return names[::-1]


def _stage_indices(n_layers: int, stages: int | None) -> list[int]:
    """Which cascade stages (0-based layer counts minus one) to evaluate: all, or ``stages`` evenly spaced ending at the last."""
    if stages is None or stages >= n_layers:
        return list(range(n_layers))
    picks = {math.ceil((k + 1) * n_layers / stages) - 1 for k in range(stages)}
    return sorted(picks)


class ModelRandomization(AttributionMetric):
    """Cascading model-parameter randomisation (module docstring).

    Args:
        order: ``top_down`` (cascading, the paper's main test) or ``independent``.
        stages: evaluate the maps after every layer (None) or at this many evenly
            spaced stages (the last is always the fully randomised model).
        reduce: per-image value from the per-stage similarities: ``mean`` over stages
            (Quantus's average correlation) or the ``last`` (fully randomised) stage.
        seed: ``torch.manual_seed`` before each layer's ``reset_parameters()``.
        progress: a progress bar over the stages.

    ``values``: ``spearman`` then ``ssim``; ``curves``: ``(B, S)`` Spearman per
    stage, ``steps``: the name of the last layer randomised at each stage.
    """

    needs = frozenset({"model", "images", "method"})
    higher_is_better = False

    def __init__(self, order: str = "top_down", stages: int | None = None, reduce: str = "mean", seed: int = 0,
                 progress: bool = False):
        if order not in ORDERS:
            raise ValueError(f"model_randomization.order: expected one of {', '.join(ORDERS)}, got {order!r}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"model_randomization.reduce: expected one of {', '.join(REDUCTIONS)}, got {reduce!r}")
        if stages is not None and (isinstance(stages, bool) or not isinstance(stages, int) or stages < 1):
            raise ValueError(f"model_randomization.stages: expected None or a positive integer, got {stages!r}")
        self.order, self.stages, self.reduce, self.seed, self.progress = order, stages, reduce, int(seed), progress

    def compute(self, inputs: MetricInputs) -> MetricResult:
        model, images = inputs.model, inputs.images
        assert model is not None and images is not None
        original = inputs.maps if inputs.maps is not None else inputs.explain(model, images)
        layers = randomizable_layers(model)
        if not layers:
            raise ValueError(f"{type(model).__name__} has no module with reset_parameters(): nothing to randomise")
        evaluate = set(_stage_indices(len(layers), self.stages))
        pristine = copy.deepcopy(model.state_dict()) if self.order == "independent" else None
        randomized = copy.deepcopy(model)
        modules = dict(randomized.named_modules())
        rank_curve, ssim_curve, steps = [], [], []
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for index, name in enumerate(tqdm(layers, desc=self.name, leave=False, disable=not self.progress)):
                if pristine is not None:
                    randomized.load_state_dict(pristine)
                torch.manual_seed(self.seed)
                modules[name].reset_parameters()
                if index not in evaluate:
                    continue
                maps = inputs.explain(randomized, images)
                rank_curve.append(spearman(original, maps))
                ssim_curve.append(ssim(original.clamp(0, 1), maps.clamp(0, 1)))
                steps.append(name)
        ranks, sims = torch.stack(rank_curve, dim=1), torch.stack(ssim_curve, dim=1)
        reduce = (lambda t: t.nanmean(dim=1)) if self.reduce == "mean" else (lambda t: t[:, -1])
        return MetricResult({"spearman": reduce(ranks), "ssim": reduce(sims)}, ranks, steps)
