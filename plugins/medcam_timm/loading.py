"""Weights loading for timm backbones (``checkpoint_path`` and offline ``pretrained``): strict, readable errors.

A file is read by the core (:func:`medcam.state_dict.read_state_dict`: ``torch.load(weights_only=True)``
or safetensors, unwrapped from ``{"state_dict": ...}``, ``{"model": ...}``, a medcam
checkpoint's ``backbone.*`` weights, ``module.`` removed), stripped of one
shared leading name such as CheXNet's ``densenet121.``, converted to timm's key
names (:mod:`medcam_timm.convert`), and its classifier is dropped. The first
conv is adapted to ``in_chans`` exactly as timm adapts pretrained weights
(:func:`timm.models.adapt_input_conv`: RGB filters summed for one channel,
repeated and scaled by ``3 / in_chans`` otherwise). Then every weight the
backbone keeps must be present with the right shape, and no unknown key may
remain; otherwise :class:`medcam.errors.CheckpointError` lists a few offenders.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from timm.models import adapt_input_conv
from torch import Tensor, nn

from medcam.errors import CheckpointError
from medcam.state_dict import read_state_dict

from .convert import TORCHVISION_BN_EPS, to_timm

__all__ = ["LoadTarget", "load_checkpoint", "load_state"]

_SHOWN = 5  # keys listed per category in error messages


@dataclass
class LoadTarget:
    """Where and how to load a state dict.

    Args:
        body: the feature extractor the weights go into.
        name_map: timm full-model key -> ``body`` key, for every tensor ``body`` holds.
        reference: shapes of every tensor of the full timm model (timm names),
            including the layers cut off after the last level; their weights in a
            file are accepted and ignored.
        first_conv: timm names of the input conv(s) to adapt to ``in_chans``.
        classifier: timm names of the classifier module(s), whose weights are dropped.
        in_chans: the backbone's input channels.
        label: the backbone's name, for messages.
        family: converter key (:func:`medcam_timm.convert.to_timm`), ``None`` for timm names only.
        formats: the accepted formats, for messages.
    """

    body: nn.Module
    name_map: Mapping[str, str]
    reference: Mapping[str, torch.Size]
    first_conv: tuple[str, ...]
    classifier: tuple[str, ...]
    in_chans: int
    label: str
    family: str | None
    formats: str


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


def _listing(what: str, items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return f"{what}: {', '.join(items[:_SHOWN])}{more}"


def _adapt_first_conv(state: dict[str, Tensor], target: LoadTarget) -> None:
    """Adapt a first-conv weight made for another channel count, as timm does for pretrained weights."""
    for conv in target.first_conv:
        key = f"{conv}.weight"
        if key not in state or key not in target.reference:
            continue
        weight, want = state[key], target.reference[key]
        if weight.shape == want or weight.dim() != 4 or len(want) != 4:
            continue
        if (weight.shape[0], *weight.shape[2:]) != (want[0], *want[2:]):
            continue  # not just a channel difference: reported as a shape mismatch
        try:
            state[key] = adapt_input_conv(target.in_chans, weight, base_chans=weight.shape[1])
        except (NotImplementedError, ValueError, AssertionError):
            continue


def load_checkpoint(target: LoadTarget, path: str | Path) -> str:
    """Load the weights file ``path`` into ``target.body``; returns the dialect found
    (``"timm"``, ``"torchvision"``, ``"official"``, ``"lukemelas"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: unreadable file, or keys/shapes that do not fit (the message lists
            up to 5 missing, unexpected and mismatched keys, and the accepted formats).
    """
    return load_state(target, read_state_dict(path), f"checkpoint '{path}'")


def load_state(target: LoadTarget, state: dict[str, Tensor], origin: str) -> str:
    """Load the tensors ``state`` (any accepted dialect) into ``target.body``; ``origin`` names them in errors.

    Returns the dialect found; raises :class:`CheckpointError` as :func:`load_checkpoint`.
    """
    inverse = {body_key: timm_key for timm_key, body_key in target.name_map.items()}
    known = {k.split(".", 1)[0] for k in target.reference} | {k.split(".", 1)[0] for k in inverse}
    state = _strip_shared_prefix(state, known)
    # a backbone saved by medcam uses the extractor's names (features_0.weight): back to timm's
    state = {(inverse[k] if k not in target.reference and k in inverse else k): v for k, v in state.items()}
    state, dialect = to_timm(target.family, state, target.reference)
    state = {k: v for k, v in state.items()
             if not any(k == c or k.startswith(c + ".") for c in target.classifier)}
    _adapt_first_conv(state, target)

    unexpected = [k for k in state if k not in target.reference]
    missing = [k for k in target.name_map if k not in state and not k.endswith("num_batches_tracked")]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(target.reference[k])}"
                  for k in target.name_map if k in state and state[k].shape != target.reference[k]]
    if unexpected or missing or mismatched:
        problems = "; ".join(_listing(what, items) for what, items in
                             (("missing keys", missing), ("unexpected keys", unexpected),
                              ("shape mismatches (file vs model)", mismatched)) if items)
        raise CheckpointError(
            f"{origin} does not fit backbone '{target.label}' (in_chans={target.in_chans}): {problems}. "
            f"Accepted: {target.formats}; bare or under 'state_dict'/'model', a 'module.' prefix or one shared "
            f"leading name is removed, classifier weights are dropped")
    body_state = {target.name_map[k]: state[k] for k in target.name_map if k in state}
    result = target.body.load_state_dict(body_state, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if left or result.unexpected_keys:  # timm's extractor holds weights we could not name in the timm model
        raise CheckpointError(f"'{target.label}': cannot match the feature extractor's weights {left[:_SHOWN]} "
                              f"to timm's key names, so {origin} cannot be loaded into it")
    eps = TORCHVISION_BN_EPS.get(target.label) if dialect == "torchvision" else None
    if eps is not None:
        for module in target.body.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eps = eps
    return dialect
