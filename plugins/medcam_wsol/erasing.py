"""The ``foreground_control`` (SR) and ``bas`` (BAS) losses of the ``fpm`` head.

Both mask the head's feature map ``F`` (``output.aux["fpm_features"]``, detached)
with the foreground map ``M`` (``output.maps["foreground"]``), re-score it through
the later backbone stages and the classification branch with *frozen* weights
(:meth:`medcam_wsol.fpm_head.FPMHead.rescore`), and compare the score of the
label ``y`` with the unmasked score ``S = score_1[y]`` (detached). With
``CE_1 = CE(score_1, y)`` and ``CE_2 = CE(score_2, y)``:

**foreground_control** (Wang et al., "Weakly supervised chest X-ray abnormality
localization with non-linear modulation and foreground control", Scientific
Reports 2024; ``bas_loss`` in WTY321/SR ``Model/vmamba.py``)::

    F_fg = F.detach() * max(2 M - 1, 0),   S_fg = GAP(A(F_fg))[y]
    L = CE_1 + 0.5 CE_2 + mean_b[ 1.5 max(0, 0.5 - S_fg / (S + eps)) + 1.2 mean_hw(M) ]

so the foreground alone must keep at least half the class activation while the
area term keeps ``M`` small.

**bas** (Wu, Zhai, Cao, "Background Activation Suppression for Weakly Supervised
Object Localization", CVPR 2022; ``bas_loss`` in wpy1999/BAS)::

    F_bg = F.detach() * (1 - M),   S_bg = GAP(A(F_bg))[y]
    r = S_bg / (S + eps), set to 0 where S_bg >= S
    L = CE_1 + 0.5 CE_2 + mean_b[ 1.0 r + 1.2 mean_hw(M) ]

so the background must carry as little class activation as possible.

Every coefficient is a parameter. The terms are returned by name (``ce``,
``ce_2``, ``foreground``/``background``, ``area``), already weighted, so the
training log shows each. Single-label models only (``S = score_1[y]`` needs one class).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from medcam.capabilities import RescoringHead
from medcam.errors import SpecError
from medcam.model import ModelOutput
from medcam.registry import losses

__all__ = ["ForegroundControlLoss", "BASLoss"]


class _ErasingLoss(nn.Module, ABC):
    """Shared part: the two cross-entropies, the frozen re-score and the area term.

    Built through the registered ``foreground_control`` and ``bas`` factories
    (:mod:`medcam_wsol.entries`), whose signatures declare the ranges checked at spec validation.
    """

    kind = ""  # "foreground" | "background"

    def __init__(self, num_classes: int, multilabel: bool, *, cls_weight: float, ce2_weight: float,
                 area_weight: float, eps: float, class_weights: Sequence[float] | str | None,
                 label_smoothing: float):
        super().__init__()
        if multilabel:
            raise SpecError(f"loss {self.name}: single-label models only (the term compares the score of the one "
                            f"label y, S = score_1[y]); use 'ce' or 'attention_box' for multi-label models")

        self.cls_weight, self.ce2_weight = float(cls_weight), float(ce2_weight)
        self.area_weight, self.eps = float(area_weight), float(eps)
        self.ce = losses.get("ce")(num_classes, False, class_weights=class_weights,
                                   label_smoothing=label_smoothing)  # the registered 'ce', by name

    @property
    def name(self) -> str:
        return "foreground_control" if self.kind == "foreground" else "bas"

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Forward the training class counts to the cross-entropies (``class_weights="balanced"``)."""
        self.ce.set_class_counts(counts)

    @abstractmethod
    def erase(self, foreground: Tensor) -> Tensor:
        """The mask ``(B, 1, h, w)`` applied to ``F``."""
        raise NotImplementedError

    @abstractmethod
    def ratio_term(self, masked: Tensor, full: Tensor) -> Tensor:
        """Per-image term ``(B,)`` from the masked and full label scores ``(B,)``."""
        raise NotImplementedError

    def _inputs(self, output: Any, model: Any) -> tuple[Tensor, Tensor, Tensor, nn.Module]:
        aux = getattr(output, "aux", {}) or {}
        maps = getattr(output, "maps", {}) or {}
        head = getattr(model, "head", None)
        if "fpm_features" not in aux or "score_2" not in aux or "foreground" not in maps \
                or not isinstance(head, RescoringHead):
            raise SpecError(f"loss {self.name} needs the 'fpm' head (its output has aux 'fpm_features' and "
                            f"'score_2' and maps 'foreground'); set head: {{name: fpm}} in the model spec")
        return aux["fpm_features"], aux["score_2"], maps["foreground"], head

    def forward(self, output: ModelOutput, batch: Mapping[str, Any], model: Any) -> dict[str, Tensor]:
        fmap, score_2, foreground, head = self._inputs(output, model)
        labels = batch["label"].to(output.logits.device)
        if labels.dim() != 1:
            raise SpecError(f"loss {self.name}: expected (B,) class labels, got shape {tuple(labels.shape)}")
        y = labels.long()[:, None]
        masked = fmap.detach() * self.erase(foreground)
        masked_scores = head.rescore(model.backbone, masked)                  # frozen weights
        s_masked = masked_scores.gather(1, y)[:, 0]
        s_full = output.logits.detach().gather(1, y)[:, 0]
        terms = {
            "ce": self.cls_weight * self.ce(output, batch),
            "ce_2": self.ce2_weight * self.ce(ModelOutput(logits=score_2), batch),
            self.kind: self.ratio_term(s_masked, s_full).mean(),
            "area": self.area_weight * foreground.flatten(1).mean(1).mean(),
        }
        return terms


class ForegroundControlLoss(_ErasingLoss):
    """SR's foreground control loss (module docstring).

    Args:
        num_classes, multilabel: injected by medcam (multi-label is rejected).
        cls_weight: weight of ``CE(score_1)`` (0 when a separate ``ce`` loss is listed).
        ce2_weight: weight of ``CE(score_2)`` (0.5).
        fg_weight: weight of the hinge term (1.5).
        target_ratio: the foreground must keep this fraction of the activation (0.5).
        area_weight: weight of ``mean(M)`` (1.2).
        eps: added to ``S`` in the ratio (1e-8).
        class_weights, label_smoothing: as the ``ce`` loss.
    """

    kind = "foreground"

    def __init__(self, num_classes: int, multilabel: bool = False, cls_weight: float = 1.0, ce2_weight: float = 0.5,
                 fg_weight: float = 1.5, target_ratio: float = 0.5, area_weight: float = 1.2, eps: float = 1e-8,
                 class_weights: Sequence[float] | str | None = None, label_smoothing: float = 0.0):
        super().__init__(num_classes, multilabel, cls_weight=cls_weight, ce2_weight=ce2_weight,
                         area_weight=area_weight, eps=eps, class_weights=class_weights,
                         label_smoothing=label_smoothing)
        self.fg_weight, self.target_ratio = float(fg_weight), float(target_ratio)

    def erase(self, foreground: Tensor) -> Tensor:
        return torch.clamp(2 * foreground - 1, min=0)

    def ratio_term(self, masked: Tensor, full: Tensor) -> Tensor:
        return self.fg_weight * torch.clamp(self.target_ratio - masked / (full + self.eps), min=0)


class BASLoss(_ErasingLoss):
    """BAS's background activation suppression loss (module docstring).

    Args:
        num_classes, multilabel: injected by medcam (multi-label is rejected).
        cls_weight: weight of ``CE(score_1)``.
        ce2_weight: weight of ``CE(score_2)`` (0.5; BAS uses 0 for VGG).
        bg_weight: weight of the background ratio (1.0).
        area_weight: weight of ``mean(M)`` (1.2 for CUB-ResNet50; 0.7 CUB-VGG, 2 ILSVRC).
        eps: added to ``S`` in the ratio.
        class_weights, label_smoothing: as the ``ce`` loss.
    """

    kind = "background"

    def __init__(self, num_classes: int, multilabel: bool = False, cls_weight: float = 1.0, ce2_weight: float = 0.5,
                 bg_weight: float = 1.0, area_weight: float = 1.2, eps: float = 1e-8,
                 class_weights: Sequence[float] | str | None = None, label_smoothing: float = 0.0):
        super().__init__(num_classes, multilabel, cls_weight=cls_weight, ce2_weight=ce2_weight,
                         area_weight=area_weight, eps=eps, class_weights=class_weights,
                         label_smoothing=label_smoothing)
        self.bg_weight = float(bg_weight)

    def erase(self, foreground: Tensor) -> Tensor:
        return 1 - foreground

    def ratio_term(self, masked: Tensor, full: Tensor) -> Tensor:
        ratio = masked / (full + self.eps)
        return self.bg_weight * torch.where(masked >= full, torch.zeros_like(ratio), ratio)
