"""Weights for timm backbones (``checkpoint_path`` and offline ``pretrained``): the key converter.

The core reads, unwraps and checks the file (:func:`medcam.state_dict.load_weights`); this
module's converter, :class:`TimmKeys`, strips one shared leading name such as CheXNet's
``densenet121.``, converts the keys to timm's names (:mod:`medcam_timm.convert`), drops the
classifier, adapts the first conv to ``in_chans`` exactly as timm adapts pretrained weights
(:func:`timm.models.adapt_input_conv`: RGB filters summed for one channel, repeated and
scaled by ``3 / in_chans`` otherwise) and renames timm's keys to the feature extractor's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from timm.models import adapt_input_conv
from torch import Tensor, nn

from medcam.state_dict import load_weights

from .convert import TORCHVISION_BN_EPS, to_timm

__all__ = ["TimmKeys", "load_timm_weights"]


@dataclass
class TimmKeys:
    """Key converter (:data:`medcam.state_dict.Converter`) from every accepted dialect to a timm extractor's keys.

    Args:
        name_map: timm full-model key -> extractor key, for every tensor the extractor holds.
        reference: shapes of every tensor of the full timm model (timm names), including the
            layers cut off after the last level; their weights in a file are left out.
        first_conv: timm names of the input conv(s) to adapt to ``in_chans``.
        classifier: timm names of the classifier module(s), whose weights are dropped.
        in_chans: the backbone's input channels.
        family: converter key (:func:`medcam_timm.convert.to_timm`), ``None`` for timm names only.

    Attributes:
        dialect: what the last converted file was (``"timm"``, ``"torchvision"``, ``"official"``, ``"lukemelas"``).
    """

    name_map: Mapping[str, str]
    reference: Mapping[str, torch.Size]
    first_conv: tuple[str, ...]
    classifier: tuple[str, ...]
    in_chans: int
    family: str | None
    dialect: str = "timm"

    def __call__(self, state: dict[str, Tensor], extractor: Mapping[str, Any]) -> dict[str, Tensor]:
        inverse = {body_key: timm_key for timm_key, body_key in self.name_map.items()}
        known = {k.split(".", 1)[0] for k in self.reference} | {k.split(".", 1)[0] for k in inverse}
        state = _strip_shared_prefix(state, known)
        # a backbone saved by medcam uses the extractor's names (features_0.weight): back to timm's
        state = {(inverse[k] if k not in self.reference and k in inverse else k): v for k, v in state.items()}
        state, self.dialect = to_timm(self.family, state, self.reference)
        state = {k: v for k, v in state.items() if not any(k == c or k.startswith(c + ".") for c in self.classifier)}
        self._adapt_first_conv(state)
        return {self.name_map.get(k, k): v for k, v in state.items() if k in self.name_map or k not in self.reference}

    def _adapt_first_conv(self, state: dict[str, Tensor]) -> None:
        """Adapt a first-conv weight made for another channel count, as timm does for pretrained weights."""
        for conv in self.first_conv:
            key = f"{conv}.weight"
            if key not in state or key not in self.reference:
                continue
            weight, want = state[key], self.reference[key]
            if weight.shape == want or weight.dim() != 4 or len(want) != 4:
                continue
            if (weight.shape[0], *weight.shape[2:]) != (want[0], *want[2:]):
                continue  # not just a channel difference: reported as a shape mismatch
            try:
                state[key] = adapt_input_conv(self.in_chans, weight, base_chans=weight.shape[1])
            except (NotImplementedError, ValueError, AssertionError):
                continue


def _strip_shared_prefix(state: dict[str, Tensor], known: set[str]) -> dict[str, Tensor]:
    """Drop leading names every key shares that are not module names of the model (``densenet121.``, ``body.``)."""
    for _ in range(3):
        firsts = {k.split(".", 1)[0] for k in state}
        if len(firsts) != 1 or not all("." in k for k in state):
            break
        (first,) = firsts
        if first in known:
            break
        state = {k.split(".", 1)[1]: v for k, v in state.items()}
    return state


def load_timm_weights(body: nn.Module, keys: TimmKeys, source: str | os.PathLike[str] | Mapping[str, Tensor], *,
                      label: str, formats: str, origin: str | None = None) -> str:
    """Load a weights file or state dict (any accepted dialect) into the extractor ``body``; returns the dialect.

    Args:
        label: the backbone's name, for messages.
        formats: the accepted formats, for messages.
        origin: how to name a state dict ``source`` in messages.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, or keys/shapes that do not fit (one line listing up to 5
            missing, unexpected and mismatched keys, and the accepted formats).
    """
    load_weights(body, source, what=f"backbone '{label}' (in_chans={keys.in_chans})", convert=keys, origin=origin,
                 hint=f"Accepted: {formats}; bare or under 'state_dict'/'model', a 'module.' prefix or one shared "
                      f"leading name is removed, classifier weights are dropped")
    eps = TORCHVISION_BN_EPS.get(label) if keys.dialect == "torchvision" else None
    if eps is not None:
        for module in body.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eps = eps
    return keys.dialect
