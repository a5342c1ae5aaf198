"""The ``fpm`` head: BAS class maps plus SR's foreground prediction map (FPM).

Sources: Wang, Huang, Xu, Huang, "Weakly supervised chest X-ray abnormality
localization with non-linear modulation and foreground control", Scientific
Reports 2024 (doi 10.1038/s41598-024-79701-8; code WTY321/SR), built on BAS:
Wu, Zhai, Cao, "Background Activation Suppression for Weakly Supervised Object
Localization", CVPR 2022 (code wpy1999/BAS).

With ``F`` the map at ``fpm_level`` (default: the level before the last, stage 3)
and ``F_L`` the map at ``cls_level`` (default: the last), K classes and weights
``w`` ``(B, K)`` over the classes ``P`` (the label in training, the top-k
predicted classes otherwise; :func:`medcam_wsol.maps.class_weights`):

* classification branch: ``A = ReLU(conv1x1_K(ReLU(conv3x3(ReLU(conv3x3(F_L))))))``
  ``(B, K, h_L, w_L)``; ``score_1 = GAP(A)`` are the logits;
* ``M_a = sigmoid(conv3x3_a(F))`` ``(B, K, h, w)``;
* ``modulation="nonlinear"``: ``att = minmax(sum_c w_c M_a[c])`` (detached),
  ``g = minmax(N(att; mu, sigma))`` with the mean and std of ``att`` over the
  batch (``stats="batch"``, as SR) or each image (``"image"``),
  ``t = minmax(f_nu(att))`` (Student-t, ``nu`` = 5);
  ``M_b = sigmoid(conv3x3_b(F * g))``, ``M_d = sigmoid(conv3x3_d(F * t))``;
* ``fusion=True``: ``FPM = minmax_per_class(M_a + M_b + M_d)`` (without
  modulation: ``minmax(M_a)``); ``fusion=False``: ``FPM`` = the mean of the
  branches (``M_a`` alone without modulation: exactly BAS's map);
* ``M = sum_c w_c FPM[c]`` ``(B, 1, h, w)`` (the class-agnostic foreground);
* ``score_2 = GAP(A * pool(M))``, ``pool`` an adaptive average pool to
  ``(h_L, w_L)`` (BAS's ``AvgPool2d(2)`` when the levels differ by a stride of 2).

Differences from the reference code (see docs/methods.md): ``F`` is a backbone
level *before* the next stage's downsampling (SR takes stage 3 after it, on an
8x8 grid at 256 px), so the map is twice as fine and the foreground-control
re-score runs the downsampling with the last stage; nothing assumes a grid
size, so any input size works.
"""
from __future__ import annotations

import typing
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.capabilities import RescorableBackbone, require
from medcam.errors import SpecError
from medcam.features import FeatureInfo
from medcam.model import ModelOutput

from .entries import ClassActivation, Modulation, Stats
from .frozen import FrozenTail, frozen_call
from .maps import class_weights, foreground_boxes, gaussian_pdf, minmax, select, student_t_pdf

__all__ = ["FPMHead", "MODULATIONS", "STATS", "CLASS_ACTIVATIONS"]

# Declared once, with the registered ``fpm`` factory's signature (medcam_wsol.entries).
MODULATIONS, STATS = typing.get_args(Modulation), typing.get_args(Stats)
CLASS_ACTIVATIONS = typing.get_args(ClassActivation)


def _level(value: int, n: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -n <= value < n:
        raise SpecError(f"head.{what}: {value!r} is out of range for a backbone with {n} levels "
                        f"(valid: 0..{n - 1} or -{n}..-1)")
    return value % n


def _loc_branch(channels: int, num_classes: int) -> nn.Sequential:
    """``sigmoid(conv3x3(x))``: one foreground map per class."""
    return nn.Sequential(nn.Conv2d(channels, num_classes, 3, padding=1), nn.Sigmoid())


class FPMHead(nn.Module):
    """Foreground prediction map head (see the module docstring for the equations).

    Built through the registered ``fpm`` factory (:mod:`medcam_wsol.entries`), whose signature
    declares the choices and ranges checked at spec validation; the levels are checked here,
    against the backbone.

    Args:
        feature_info: the backbone's levels.
        num_classes: K.
        fpm_level: the level ``F`` the foreground maps are computed on (default -2).
        cls_level: the level the classification branch reads (default -1); must
            not come before ``fpm_level``.
        modulation: ``"nonlinear"`` (SR: Gaussian and Student-t branches) or ``"none"``.
        fusion: fuse the branches by per-class min-max of their sum (SR), else average them.
        nu: degrees of freedom of the Student-t modulation.
        stats: ``"batch"`` (SR: Gaussian mean/std over the whole batch) or ``"image"``.
        top_k: without labels, ``M`` averages the FPMs of the ``top_k`` predicted classes.
        hidden: channels of the two 3x3 convolutions of the classification branch.
        box_threshold: default threshold of :meth:`boxes` (SR 0.83, BAS 0.15).
        class_activation: the last activation of the classification branch, ``"relu"``
            (BAS and SR) or ``"softplus"``. With ``relu`` a class whose map is negative
            everywhere has logit 0 and receives no gradient again; trained from scratch
            (no ImageNet weights, as on BUSI in docs/results.md) whole classes die that
            way in the first epochs. ``softplus`` keeps the maps positive, so the
            foreground ratio ``S_fg / S`` keeps its meaning, and never zeroes a gradient.

    ``forward(features, labels=None)`` returns a :class:`ModelOutput` with
    ``logits = score_1`` ``(B, K)``, ``maps = {"fpm": FPM (B, K, h, w), "foreground":
    M (B, 1, h, w)}`` at the resolution of ``F``, and ``aux`` holding ``score_2``
    ``(B, K)``, ``class_maps`` A, ``fpm_features`` F, ``class_weights`` w and the
    branch maps (the losses of :mod:`medcam_wsol.erasing` read them).
    """

    def __init__(self, feature_info: FeatureInfo, num_classes: int, fpm_level: int = -2, cls_level: int = -1,
                 modulation: str = "nonlinear", fusion: bool = True, nu: float = 5.0, stats: str = "batch",
                 top_k: int = 1, hidden: int = 1024, box_threshold: float = 0.83, class_activation: str = "relu"):
        super().__init__()
        n = len(feature_info)
        self.fpm_level = _level(fpm_level, n, "fpm_level")
        self.cls_level = _level(cls_level, n, "cls_level")
        if self.fpm_level > self.cls_level:
            raise SpecError(f"head.fpm_level ({fpm_level}) comes after head.cls_level ({cls_level}); the foreground "
                            f"map must be computed on the classified level or an earlier one")
        self.class_activation = class_activation
        self.num_classes = num_classes
        self.modulation, self.fusion, self.nu, self.stats = modulation, bool(fusion), float(nu), stats
        self.top_k, self.box_threshold = top_k, float(box_threshold)
        self.level = self.cls_level  # the classified level (as other heads name it)
        cls_channels = feature_info[self.cls_level].channels
        fpm_channels = feature_info[self.fpm_level].channels
        self.classifier = nn.Sequential(
            nn.Conv2d(cls_channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, num_classes, 1), nn.ReLU() if class_activation == "relu" else nn.Softplus(),
        )
        self.loc_a = _loc_branch(fpm_channels, num_classes)
        if modulation == "nonlinear":
            self.loc_b = _loc_branch(fpm_channels, num_classes)
            self.loc_d = _loc_branch(fpm_channels, num_classes)

    # ------------------------------------------------------------------ pieces
    def class_maps(self, features: Sequence[Tensor]) -> Tensor:
        """Class maps ``A`` ``(B, K, h, w)`` (non-negative) of the classified level ``features[cls_level]``;
        ``logits = GAP(A)`` (:class:`medcam.capabilities.ClassMapHead`, so ``cam`` reads them)."""
        return self.classifier(features[self.cls_level])

    def _modulations(self, att: Tensor) -> tuple[Tensor, Tensor]:
        """``(g, t)``: the min-max normalized Gaussian and Student-t transforms of ``att`` ``(B, 1, h, w)``."""
        if self.stats == "batch":
            mean, std = att.mean(), att.std() if att.numel() > 1 else att.new_tensor(0.0)
        else:
            flat = att.flatten(1)
            mean = flat.mean(1).view(-1, 1, 1, 1)
            std = (flat.std(1) if flat.shape[1] > 1 else torch.zeros_like(flat[:, 0])).view(-1, 1, 1, 1)
        std = std.clamp_min(1e-6)  # a constant map (e.g. a 1x1 grid) has no spread
        return minmax(gaussian_pdf(att, mean, std)), minmax(student_t_pdf(att, self.nu))

    def foreground(self, fmap: Tensor, weights: Tensor) -> dict[str, Tensor]:
        """The foreground maps of level map ``F`` ``(B, C, h, w)`` for class weights ``(B, K)``.

        Returns ``{"fpm": (B, K, h, w), "foreground": (B, 1, h, w), "m_a": ..., ["m_b", "m_d"]}``.
        """
        m_a = self.loc_a(fmap)
        branches = {"m_a": m_a}
        if self.modulation == "nonlinear":
            att = minmax(select(m_a.detach(), weights))
            g, t = self._modulations(att)
            branches["m_b"] = self.loc_b(fmap * g)
            branches["m_d"] = self.loc_d(fmap * t)
        stacked = list(branches.values())
        if self.fusion:
            fpm = minmax(torch.stack(stacked).sum(0))
        else:
            fpm = torch.stack(stacked).mean(0)
        return {"fpm": fpm, "foreground": select(fpm, weights), **branches}

    # ------------------------------------------------------------------ forward
    def forward(self, features: Sequence[Tensor], labels: Tensor | None = None) -> ModelOutput:
        """See the class docstring; ``labels`` ``(B,)`` or ``(B, K)`` pick ``P`` (else the top-k)."""
        if len(features) <= self.cls_level:
            raise SpecError(f"the fpm head expects at least {self.cls_level + 1} feature levels, got {len(features)}")
        fmap = features[self.fpm_level]
        class_maps = self.class_maps(features)
        score_1 = class_maps.mean(dim=(2, 3))
        weights = class_weights(labels, score_1, self.top_k)
        maps = self.foreground(fmap, weights)
        foreground = maps["foreground"]
        pooled = F.adaptive_avg_pool2d(foreground, class_maps.shape[-2:])
        score_2 = (class_maps * pooled).mean(dim=(2, 3))
        aux = {"score_2": score_2, "class_maps": class_maps, "fpm_features": fmap, "class_weights": weights,
               **{k: v for k, v in maps.items() if k.startswith("m_")}}
        return ModelOutput(logits=score_1, maps={"fpm": maps["fpm"], "foreground": foreground}, aux=aux)

    # ------------------------------------------------------------------ re-scoring
    def _tail(self, backbone: nn.Module, head: nn.Module, x: Tensor) -> Tensor:
        if self.cls_level > self.fpm_level:
            tail = require(backbone, RescorableBackbone, "backbone",
                           "the foreground-control re-score (or set head.fpm_level equal to head.cls_level)")
            x = list(tail.forward_from(x, self.fpm_level))[self.cls_level - self.fpm_level - 1]
        return head.classifier(x).mean(dim=(2, 3))

    def rescore(self, backbone: nn.Module, fmap: Tensor, *, frozen: bool = True) -> Tensor:
        """``GAP(A)`` ``(B, K)`` of a (masked) ``fpm_level`` map ``(B, C, h, w)``.

        Runs ``backbone.forward_from`` up to ``cls_level`` and the classification
        branch. With ``frozen`` (the default) their parameters are detached
        (:func:`medcam_wsol.frozen.frozen_call`): the scores carry gradients to
        ``fmap`` only.
        """
        if not frozen:
            return self._tail(backbone, self, fmap)
        return frozen_call(FrozenTail(backbone, self, self._tail), fmap)

    def boxes(self, output: ModelOutput, size: Sequence[int], threshold: float | None = None,
              key: str = "foreground") -> list[Tensor]:
        """Boxes of ``output.maps[key]`` for input size ``(H, W)`` (:func:`medcam_wsol.maps.foreground_boxes`).

        ``threshold`` defaults to ``box_threshold``. For ``key="fpm"`` the maps are
        ``(B, K, h, w)``; pass ``output.maps["fpm"][:, c]`` yourself to pick a class.
        """
        maps = output.maps.get(key)
        if maps is None:
            raise KeyError(f"output.maps has no '{key}' (maps: {', '.join(sorted(output.maps)) or 'none'})")
        return foreground_boxes(maps, size, self.box_threshold if threshold is None else threshold)

    def extra_repr(self) -> str:
        return (f"fpm_level={self.fpm_level}, cls_level={self.cls_level}, modulation={self.modulation!r}, "
                f"fusion={self.fusion}, nu={self.nu:g}, stats={self.stats!r}, top_k={self.top_k}")
