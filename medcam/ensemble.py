"""A fold ensemble that loads, explains and serves like one model.

``k`` trained copies of one architecture (the models of k-fold
cross-validation) become one :class:`MedcamEnsemble`: a
:class:`~medcam.model.MedcamModel` whose logits are the mean of the members'
logits,

    z(x) = (1/k) sum_m z_m(x),

so for softmax models its probabilities are the normalized geometric mean of
the members' probabilities. Its spec is the members' spec plus
``ensemble: {members: k}``, so ``medcam.save`` / ``medcam.load``,
``medcam explain``, ``medcam eval`` and the app take it like any model.

Attribution works on it unchanged: its backbone level ``l`` is the members'
level-``l`` maps concatenated along channels, ``(B, k C_l, h, w)``, and its
head splits them back. Because the logits are a mean, gradient methods get
``(1/k)`` of each member's gradients on that member's channels, so Grad-CAM of
the ensemble is ``ReLU(sum_m sum_c alpha^m_c A^m_c)``: the members' weighted
activation sums added before the ReLU; CAM's weights are the members' weights
divided by ``k``, side by side, so CAM of the ensemble is the mean of the
members' CAMs (exactly).
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from .capabilities import CamWeightsHead, ClassMapHead, RescorableBackbone
from .errors import CheckpointError, SpecError
from .features import FeatureInfo, FeatureLevel
from .model import MedcamModel, ModelOutput

__all__ = ["MedcamEnsemble", "EnsembleBackbone", "EnsembleHead", "ensemble_of", "member_spec"]


def member_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of one member: ``spec`` without its ``ensemble`` key."""
    return {k: copy.deepcopy(v) for k, v in spec.items() if k != "ensemble"}


def _split(level: Tensor, k: int) -> list[Tensor]:
    """``(B, k C, h, w)`` -> k maps ``(B, C, h, w)``."""
    if level.shape[1] % k:
        raise SpecError(f"an ensemble level has {level.shape[1]} channels, not a multiple of its {k} members")
    return list(level.split(level.shape[1] // k, dim=1))


class EnsembleBackbone(nn.Module):
    """The members' backbones side by side: level ``l`` is their level-``l`` maps concatenated on channels."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise SpecError(f"an ensemble needs at least 2 members, got {len(members)}")
        infos = [m.feature_info for m in members]
        if any(info != infos[0] for info in infos[1:]):
            raise SpecError("ensemble members must share one architecture (their feature levels differ)")
        self.members = nn.ModuleList(members)
        k = len(members)
        self.feature_info = FeatureInfo([FeatureLevel(lv.channels * k, lv.stride, "") for lv in infos[0]],
                                        cam_level=infos[0].cam_level)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, C, H, W)`` normalized images -> levels ``(B, k C_l, H/s_l, W/s_l)``."""
        outputs = [list(m(x)) for m in self.members]
        return [torch.cat(maps, dim=1) for maps in zip(*outputs)]


class _ForwardFromBackbone(EnsembleBackbone):
    """An :class:`EnsembleBackbone` whose members can re-run their later stages (``forward_from``)."""

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """Level ``level`` of the ensemble ``(B, k C, h, w)`` -> its later levels."""
        parts = _split(x, len(self.members))
        outputs = [list(m.forward_from(part, level)) for m, part in zip(self.members, parts)]
        return [torch.cat(maps, dim=1) for maps in zip(*outputs)]


class EnsembleHead(nn.Module):
    """The members' heads on their own channels; logits (and shared maps) averaged."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        k = len(self.members)
        per_member = list(zip(*[_split(level, k) for level in features]))
        outputs = [head(list(levels), labels=labels) for head, levels in zip(self.members, per_member)]
        logits = torch.stack([o.logits for o in outputs]).mean(0)
        maps = {key: torch.stack([o.maps[key] for o in outputs]).mean(0) for key in outputs[0].maps
                if all(key in o.maps and o.maps[key].shape == outputs[0].maps[key].shape for o in outputs)}
        return ModelOutput(logits=logits, maps=maps)


class _CAMHead(EnsembleHead):
    """An :class:`EnsembleHead` of pool-then-linear heads: CAM weights are the members' over ``k``, side by side."""

    @property
    def level(self) -> int:
        return int(self.members[0].level)

    def cam_weights(self) -> Tensor:
        """``(K, k C)``: ``[w_1, ..., w_k] / k`` (the logits are the members' mean)."""
        return torch.cat([h.cam_weights() for h in self.members], dim=1) / len(self.members)


class _ClassMapEnsembleHead(EnsembleHead):
    """An :class:`EnsembleHead` of class-map heads: the members' class maps, averaged."""

    @property
    def level(self) -> int:
        return int(self.members[0].level)

    def class_maps(self, features: Sequence[Tensor]) -> Tensor:
        """``(B, K, h, w)``: the mean of the members' class maps, each on its own channels."""
        k = len(self.members)
        per_member = list(zip(*[_split(level, k) for level in features]))
        return torch.stack([h.class_maps(list(levels)) for h, levels in zip(self.members, per_member)]).mean(0)


class MedcamEnsemble(MedcamModel):
    """``k`` copies of one medcam model architecture with averaged logits (see the module docstring).

    Build it with :func:`ensemble_of` (trained models) or
    :func:`medcam.build_model` from a spec with ``ensemble: {members: k}``.

    Args:
        spec: the resolved ensemble spec (the members' spec plus ``ensemble``).
        members: k :class:`MedcamModel` of the members' spec; their backbones and heads are taken over.
    """

    def __init__(self, spec: Mapping[str, Any], members: Sequence[MedcamModel]):
        ensemble = spec.get("ensemble") or {}
        if ensemble.get("members") != len(members):
            raise SpecError(f"ensemble.members is {ensemble.get('members')} but {len(members)} models were given")
        backbones = [m.backbone for m in members]
        heads = [m.head for m in members]
        with_tail = all(isinstance(b, RescorableBackbone) for b in backbones)
        backbone = (_ForwardFromBackbone if with_tail else EnsembleBackbone)(backbones)
        if with_tail:
            backbone.forward_from_exact = all(b.forward_from_exact for b in backbones)
        if all(isinstance(h, CamWeightsHead) for h in heads):
            head = _CAMHead(heads)
        elif all(isinstance(h, ClassMapHead) for h in heads):
            head = _ClassMapEnsembleHead(heads)
        else:
            head = EnsembleHead(heads)
        super().__init__(spec, backbone, head)

    @property
    def size(self) -> int:
        """The number of members k."""
        return len(self.backbone.members)

    def member(self, index: int) -> MedcamModel:
        """Member ``index`` as a :class:`MedcamModel` (sharing this ensemble's modules)."""
        return MedcamModel(member_spec(self.spec), self.backbone.members[index], self.head.members[index])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", members={self.size}"


def ensemble_of(models: Sequence[MedcamModel]) -> MedcamEnsemble:
    """One :class:`MedcamEnsemble` of trained models that share a spec (e.g. the folds of a k-fold run).

    Raises:
        CheckpointError: fewer than two models, or models whose specs differ.
    """
    models = list(models)
    if len(models) < 2:
        raise CheckpointError(f"an ensemble needs at least 2 models, got {len(models)}")
    specs = [member_spec(m.spec) for m in models]
    for i, spec in enumerate(specs[1:], start=2):
        if spec != specs[0]:
            diff = sorted(k for k in set(spec) | set(specs[0]) if spec.get(k) != specs[0].get(k))
            raise CheckpointError(f"model {i} has another spec than model 1 (keys {', '.join(diff)}); an ensemble "
                                  f"averages copies of one architecture")
    from .spec import resolve_model_spec

    copies = [copy.deepcopy(m) for m in models]
    spec = resolve_model_spec({**specs[0], "ensemble": {"members": len(models)}})
    device = next(iter(models[0].parameters()), torch.zeros(())).device
    return MedcamEnsemble(spec, copies).to(device).eval()
